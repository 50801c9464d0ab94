import type { ServerResponse } from 'node:http';

/**
 * Errors on /v1 use OpenAI's shape so that OpenAI clients surface them
 * properly: {"error": {"message", "type", "param", "code"}}.
 */
export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

export function sendOpenAIError(
  res: ServerResponse,
  status: number,
  type: string,
  message: string,
  code: string | null = null,
  param: string | null = null,
): void {
  const body: OpenAIErrorBody = { error: { message, type, param, code } };
  const json = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(json) });
  res.end(json);
}
