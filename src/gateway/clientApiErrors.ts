import type express from 'express';
import { AppError, ValidationError } from '../errors';
import { sendOpenAIError } from './openaiError';

/**
 * The error answer of the client API's JSON routers (/v1/keys, /v1/webhooks), in
 * OpenAI's shape: body-parser's refusals, then the services' typed errors (their
 * `details.code` when they set one). Anything else goes on to the gateway's 500
 * handler, which logs the type and never echoes the error.
 */
export function clientApiErrorHandler(opts: { maxBodyLabel: string; param?: (field: string | undefined) => string | undefined }): express.ErrorRequestHandler {
  const paramOf = opts.param ?? ((f) => f);
  return (err, _req, res, next) => {
    if (res.headersSent) return next(err);
    const parserType = (err as { type?: string })?.type;
    if (parserType === 'entity.too.large') return sendOpenAIError(res, 413, 'invalid_request_error', `The request body is larger than the ${opts.maxBodyLabel} allowed.`, 'request_too_large');
    if (parserType === 'entity.parse.failed') return sendOpenAIError(res, 400, 'invalid_request_error', 'The request body is not valid JSON.', 'invalid_json');
    if (typeof parserType === 'string' && parserType.length > 0 && (err as { status?: number }).status === 400) {
      return sendOpenAIError(res, 400, 'invalid_request_error', 'The request body could not be read.', 'invalid_body');
    }
    if (err instanceof AppError && err.status < 500) {
      const code = typeof err.details?.code === 'string' ? err.details.code : err.code;
      const param = err instanceof ValidationError ? (paramOf(err.fieldErrors[0]?.field) ?? null) : null;
      const type = err.status === 403 ? 'permission_error' : 'invalid_request_error';
      return sendOpenAIError(res, err.status, type, err.message, code, param);
    }
    next(err);
  };
}

/** camelCase service field names as the client API's snake_case. */
export const snakeCase = (field: string | undefined) => field?.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
