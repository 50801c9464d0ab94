import { z } from 'zod';
import type { Endpoint } from '../metering/record';

/**
 * The least each endpoint needs to be forwarded, checked before any upstream
 * call. Everything else passes through untouched (loose objects), so new
 * OpenAI parameters work without a gateway release. Error messages name the
 * parameter, never its value: values are payload.
 */
const text = z.string();
/**
 * Upper bounds on what the gateway counts or multiplies (the reservation, the
 * local token estimate): far above what any provider accepts, low enough that
 * no request makes the arithmetic or the estimate unbounded.
 */
export const LIMITS = {
  /** max_tokens and its kin. */
  outputTokens: 1_000_000,
  /** n and best_of: choices generated per prompt. */
  choices: 128,
  /** Prompts of one legacy completion, inputs of one embedding request (OpenAI's own limit). */
  inputs: 2_048,
  /** Messages of a chat, items of a Responses input, content parts of one message. */
  items: 100_000,
  /** Tool (function) definitions. */
  tools: 1_024,
  /** Token ids in one prompt given as tokens. */
  tokenIds: 1_000_000,
} as const;
const contentPart = z.looseObject({ type: z.string() });
const message = z.looseObject({
  role: z.string({ error: 'each message needs a role' }),
  content: z.union([text, z.array(contentPart).max(LIMITS.items), z.null()]).optional(),
});
const tokens = z.number().int().positive().max(LIMITS.outputTokens).nullish();
const choices = z.number().int().min(1).max(LIMITS.choices).nullish();
const tools = z.array(z.unknown()).max(LIMITS.tools).nullish();
const tokenIds = z.array(z.number().int().min(0)).max(LIMITS.tokenIds);
const promptLike = (error: string) =>
  z.union([text, z.array(text).max(LIMITS.inputs), tokenIds, z.array(tokenIds).max(LIMITS.inputs)], { error });
const common = {
  model: z.string({ error: "you must provide a model parameter" }).min(1, 'you must provide a model parameter'),
  stream: z.boolean().optional(),
  stream_options: z.looseObject({ include_usage: z.boolean().optional() }).nullish(),
};

export const endpointSchemas: Record<Endpoint, z.ZodType<Record<string, unknown> & { model: string; stream?: boolean }>> = {
  'chat.completions': z.looseObject({
    ...common,
    messages: z.array(message, { error: 'messages must be an array' }).min(1, 'messages must not be empty').max(LIMITS.items),
    max_tokens: tokens,
    max_completion_tokens: tokens,
    n: choices,
    tools,
    functions: tools,
  }),
  completions: z.looseObject({
    ...common,
    prompt: promptLike('prompt must be a string or an array'),
    max_tokens: tokens,
    n: choices,
    best_of: choices,
  }),
  embeddings: z.looseObject({
    ...common,
    input: promptLike('input must be a string or an array'),
  }),
  responses: z.looseObject({
    ...common,
    input: z.union([text, z.array(z.looseObject({})).max(LIMITS.items)], { error: 'input must be a string or an array of items' }).optional(),
    max_output_tokens: tokens,
    tools,
  }),
};

/**
 * The most output a request can make the provider generate: the per-choice
 * bound the client set (null when it set none) and how many choices are
 * generated. Chat: max_tokens or max_completion_tokens (the larger when both
 * are given: providers differ in which one wins), times n. Legacy
 * completions: max_tokens, times the larger of n and best_of (best_of
 * candidates are generated and billed, n returned), times the number of
 * prompts (each prompt of a list is answered in full). Responses:
 * max_output_tokens, one choice. Embeddings generate nothing.
 */
export function outputBound(endpoint: Endpoint, body: Record<string, unknown>): { perChoice: number | null; choices: number } {
  const count = (v: unknown) => (typeof v === 'number' ? v : 1);
  const limit = (...vs: unknown[]) => {
    const given = vs.filter((v): v is number => typeof v === 'number');
    return given.length ? Math.max(...given) : null;
  };
  switch (endpoint) {
    case 'chat.completions':
      return { perChoice: limit(body.max_tokens, body.max_completion_tokens), choices: count(body.n) };
    case 'completions':
      return { perChoice: limit(body.max_tokens), choices: Math.max(count(body.n), count(body.best_of)) * promptCount(body.prompt) };
    case 'responses':
      return { perChoice: limit(body.max_output_tokens), choices: 1 };
    case 'embeddings':
      return { perChoice: 0, choices: 0 };
  }
}

/** A list of strings or of token lists is several prompts; a string or one token list is one. */
function promptCount(prompt: unknown): number {
  if (!Array.isArray(prompt) || prompt.length === 0) return 1;
  return typeof prompt[0] === 'number' ? 1 : prompt.length;
}

/** The parameter that bounds output, by endpoint: what the gateway sets when it must bound a request itself. */
export const OUTPUT_LIMIT_PARAM: Record<Exclude<Endpoint, 'embeddings'>, string> = {
  // OpenAI's current name; its reasoning models refuse max_tokens.
  'chat.completions': 'max_completion_tokens',
  completions: 'max_tokens',
  responses: 'max_output_tokens',
};

/**
 * Chat hosts known to refuse max_tokens next to max_completion_tokens ("Setting
 * 'max_tokens' and 'max_completion_tokens' at the same time is not supported"):
 * OpenAI (whose reasoning models also refuse max_tokens alone), Azure OpenAI,
 * Volcengine Ark.
 */
const REFUSES_BOTH_CHAT_LIMITS = [/^api\.openai\.com$/, /\.openai\.azure\.com$/, /(^|\.)volces\.com$/];

/**
 * The parameters the gateway sets, all to the same value, to bound a request
 * it must bound itself, for one route. On chat, OpenAI-compatible servers that
 * predate max_completion_tokens ignore it and would generate their own maximum,
 * past what was reserved: they get max_tokens too, unless their host is known
 * to refuse the pair.
 */
export function outputLimitParams(endpoint: Exclude<Endpoint, 'embeddings'>, baseUrl: string): string[] {
  if (endpoint !== 'chat.completions') return [OUTPUT_LIMIT_PARAM[endpoint]];
  let host = '';
  try {
    host = new URL(baseUrl).hostname.toLowerCase();
  } catch {
    // An unparsable base URL is never reached (the call fails first); both names are the safe default.
  }
  return REFUSES_BOTH_CHAT_LIMITS.some((r) => r.test(host)) ? ['max_completion_tokens'] : ['max_completion_tokens', 'max_tokens'];
}

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
