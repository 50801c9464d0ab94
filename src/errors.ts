/**
 * Typed errors shared by the CLI, the admin API and activities. The HTTP layer
 * maps them to status codes in one place (src/admin/problem.ts); workflows turn
 * the business ones into non-retryable failures.
 */
export class AppError extends Error {
  readonly status: number = 500;
  readonly code: string = 'internal_error';
  constructor(message: string, readonly details?: Record<string, unknown>) {
    super(message);
    this.name = new.target.name;
  }
}

export class ValidationError extends AppError {
  override readonly status = 400;
  override readonly code = 'invalid_input';
  constructor(message: string, readonly fieldErrors: { field: string; message: string }[] = []) {
    super(message);
  }
}

export class NotFoundError extends AppError {
  override readonly status = 404;
  override readonly code = 'not_found';
}

export class ConflictError extends AppError {
  override readonly status = 409;
  override readonly code = 'conflict';
}

/** A debit the account cannot cover (staff refunds and adjustments). */
export class InsufficientFundsError extends AppError {
  override readonly status = 409;
  override readonly code = 'insufficient_funds';
}

export class UnauthorizedError extends AppError {
  override readonly status = 401;
  override readonly code = 'unauthorized';
}

export class ForbiddenError extends AppError {
  override readonly status = 403;
  override readonly code = 'forbidden';
}

/** Infrastructure the process depends on (PostgreSQL, Temporal) cannot be reached. */
export class DependencyUnavailableError extends AppError {
  override readonly status = 503;
  override readonly code = 'dependency_unavailable';
}

/** Something that existed and is no longer available (an expired or used-up download link). */
export class GoneError extends AppError {
  override readonly status = 410;
  override readonly code = 'gone';
}
