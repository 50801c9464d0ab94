import { z } from 'zod';
import type { Endpoint } from '../metering/record';

/**
 * The least each endpoint needs to be forwarded, checked before any upstream
 * call. Everything else passes through untouched (loose objects), so new
 * OpenAI parameters work without a gateway release. Error messages name the
 * parameter, never its value: values are payload.
 */
const text = z.string();
const contentPart = z.looseObject({ type: z.string() });
const message = z.looseObject({
  role: z.string({ error: 'each message needs a role' }),
  content: z.union([text, z.array(contentPart), z.null()]).optional(),
});
const tokens = z.number().int().positive().optional();
const common = {
  model: z.string({ error: "you must provide a model parameter" }).min(1, 'you must provide a model parameter'),
  stream: z.boolean().optional(),
  stream_options: z.looseObject({ include_usage: z.boolean().optional() }).nullish(),
};

export const endpointSchemas: Record<Endpoint, z.ZodType<Record<string, unknown> & { model: string; stream?: boolean }>> = {
  'chat.completions': z.looseObject({
    ...common,
    messages: z.array(message, { error: 'messages must be an array' }).min(1, 'messages must not be empty'),
    max_tokens: tokens,
    max_completion_tokens: tokens,
  }),
  completions: z.looseObject({
    ...common,
    prompt: z.union([text, z.array(text), z.array(z.number()), z.array(z.array(z.number()))], { error: 'prompt must be a string or an array' }),
    max_tokens: tokens,
  }),
  embeddings: z.looseObject({
    ...common,
    input: z.union([text, z.array(text), z.array(z.number()), z.array(z.array(z.number()))], { error: 'input must be a string or an array' }),
  }),
  responses: z.looseObject({
    ...common,
    input: z.union([text, z.array(z.looseObject({}))], { error: 'input must be a string or an array of items' }).optional(),
    max_output_tokens: tokens,
  }),
};

export const endpointPaths: Record<Endpoint, string> = {
  'chat.completions': '/chat/completions',
  completions: '/completions',
  embeddings: '/embeddings',
  responses: '/responses',
};

/** Streams of these endpoints report usage only when asked with stream_options.include_usage. */
export const ASKS_FOR_STREAM_USAGE: ReadonlySet<Endpoint> = new Set(['chat.completions', 'completions']);

export function firstIssue(error: z.ZodError): { param: string | null; message: string } {
  const issue = error.issues[0]!;
  const param = issue.path.length ? issue.path.map(String).join('.') : null;
  return { param, message: param ? `Invalid '${param}': ${issue.message}.` : `${issue.message}.` };
}
