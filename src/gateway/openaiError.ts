import type { Response } from 'express';

/**
 * Errors on /v1 use OpenAI's shape so that OpenAI clients surface them
 * properly: {"error": {"message", "type", "param", "code"}}.
 */
export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

export function sendOpenAIError(
  res: Response,
  status: number,
  type: string,
  message: string,
  code: string | null = null,
  param: string | null = null,
): void {
  const body: OpenAIErrorBody = { error: { message, type, param, code } };
  res.status(status).json(body);
}
