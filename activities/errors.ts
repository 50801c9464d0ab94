import { ApplicationFailure } from '@temporalio/activity';

/**
 * How activities turn domain errors into what workflows see. A failure that
 * retrying cannot fix (bad input, a row that does not exist, data the rules
 * refuse) is non-retryable: it fails the activity at once with a `type` the
 * workflow can tell apart (nonRetryableErrorTypes, or the failure's type).
 * Anything else (the database gone, a deadlock, a timeout) is thrown as it
 * is, and Temporal retries it.
 *
 * The types are part of the workflow contract: a workflow names them in its
 * retry policy and history records them, so they stay as they are.
 */

/** Any error class, whatever its constructor takes. */
type ErrorClass = abstract new (...args: never[]) => Error;

/** Domain error classes and the failure type each becomes. */
export type FailureTypes = ReadonlyArray<readonly [ErrorClass, string]>;

/** A failure that retrying cannot fix, with the type the workflow sees. */
export function permanentFailure(message: string, type: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(message, type);
}

/** `err` as a non-retryable failure if it is one of `types`' classes (its message kept), else `err` itself. */
export function toActivityFailure(err: unknown, types: FailureTypes): unknown {
  for (const [cls, type] of types) if (err instanceof cls) return permanentFailure(err.message, type);
  return err;
}

/** Runs `work`, throwing the errors of `types` as non-retryable failures (toActivityFailure). */
export async function failingPermanentlyOn<T>(types: FailureTypes, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    throw toActivityFailure(err, types);
  }
}
