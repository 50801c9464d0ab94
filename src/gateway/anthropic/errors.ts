import type { ServerResponse } from 'node:http';

/**
 * Errors on the Anthropic routes (/v1/messages...) in Anthropic's shape, so the
 * official SDK raises its own error classes: {"type":"error","error":{"type","message"}}.
 * The type follows the status, as Anthropic documents it; our own codes
 * (insufficient_quota, model_not_found...) stay in the metering record only.
 */
export type AnthropicErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'billing_error'
  | 'permission_error'
  | 'not_found_error'
  | 'request_too_large'
  | 'rate_limit_error'
  | 'api_error'
  | 'overloaded_error';

/** Anthropic's status for "overloaded", which also sends a request to the next route. */
export const OVERLOADED_STATUS = 529;

export function anthropicErrorType(status: number): AnthropicErrorType {
  switch (status) {
    case 400:
    case 422:
      return 'invalid_request_error';
    case 401:
      return 'authentication_error';
    case 402:
      return 'billing_error';
    case 403:
      return 'permission_error';
    case 404:
      return 'not_found_error';
    case 413:
      return 'request_too_large';
    case 429:
      return 'rate_limit_error';
    case OVERLOADED_STATUS:
      return 'overloaded_error';
    default:
      return status < 500 ? 'invalid_request_error' : 'api_error';
  }
}

export function anthropicErrorBody(status: number, message: string, type: AnthropicErrorType = anthropicErrorType(status)): string {
  return JSON.stringify({ type: 'error', error: { type, message } });
}

export function sendAnthropicError(res: ServerResponse, status: number, message: string, type?: AnthropicErrorType): void {
  const json = anthropicErrorBody(status, message, type);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(json) });
  res.end(json);
}

/**
 * The gateway's shared refusals (authentication, rate limit, body size) are
 * written for OpenAI clients; on the Anthropic routes they go out in this
 * shape with the same status. Same signature as sendOpenAIError.
 */
export function sendAnthropicErrorLike(res: ServerResponse, status: number, _type: string, message: string, code: string | null = null): void {
  const text = code === 'missing_api_key' ? 'x-api-key header is required (or Authorization: Bearer).' : code === 'invalid_api_key' ? 'invalid x-api-key' : message;
  sendAnthropicError(res, status, text);
}

/** The type of an Anthropic error body, if it is one (never its message: that may quote the request). */
export function anthropicErrorTypeOf(text: string): string | null {
  try {
    const j = JSON.parse(text) as { type?: unknown; error?: { type?: unknown } };
    const t = j?.type === 'error' ? j.error?.type : undefined;
    return typeof t === 'string' && /^[a-z_]{1,64}$/.test(t) ? t : null;
  } catch {
    return null;
  }
}
