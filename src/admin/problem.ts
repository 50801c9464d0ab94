import type { ErrorRequestHandler, Response } from 'express';
import { AppError, ValidationError } from '../errors';
import type { Logger } from '../logger';

/**
 * Errors on the admin API are RFC 9457 problem documents
 * (`application/problem+json`). This is the one place that maps error types
 * to status codes. Unexpected errors become a 500 with the request id and no
 * internals; the details go to the log.
 */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance?: string;
  requestId?: string;
  errors?: { field: string; message: string }[];
}

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  410: 'Gone',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

export function sendProblem(
  res: Response,
  status: number,
  code: string,
  detail: string,
  extra: Partial<Problem> = {},
): void {
  const body: Problem = {
    type: `https://docs.mixroute.dev/problems/${code}`,
    title: TITLES[status] ?? 'Error',
    status,
    detail,
    instance: res.req.originalUrl,
    requestId: res.locals.requestId as string | undefined,
    ...extra,
  };
  if (status === 401) res.setHeader('www-authenticate', 'Bearer realm="mixroute-admin"');
  res.status(status).type('application/problem+json').send(JSON.stringify(body));
}

export function problemErrorHandler(logger: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    if (res.headersSent) return;
    if (err instanceof ValidationError) {
      sendProblem(res, 400, err.code, err.message, { errors: err.fieldErrors });
      return;
    }
    if (err instanceof AppError) {
      sendProblem(res, err.status, err.code, err.message);
      return;
    }
    // body-parser errors carry `type` and `status`.
    const bodyError = err as { type?: string; status?: number };
    if (bodyError.type === 'entity.parse.failed') {
      sendProblem(res, 400, 'malformed_json', 'the request body is not valid JSON');
      return;
    }
    if (bodyError.type === 'entity.too.large') {
      sendProblem(res, 413, 'body_too_large', 'the request body is larger than the admin API accepts');
      return;
    }
    if (typeof bodyError.status === 'number' && bodyError.status >= 400 && bodyError.status < 500) {
      sendProblem(res, bodyError.status, 'bad_request', 'the request could not be read');
      return;
    }
    logger.error({ err, requestId: res.locals.requestId, method: req.method, route: req.route?.path }, 'unhandled error');
    sendProblem(res, 500, 'internal_error', 'an internal error occurred; quote the request id when reporting it');
  };
}
