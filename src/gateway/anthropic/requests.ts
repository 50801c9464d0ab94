import { z } from 'zod';
import { LIMITS } from '../requests';

/**
 * The least a Messages request needs to be forwarded, with the same bounds
 * as the OpenAI routes (src/gateway/requests.ts LIMITS): counts of messages,
 * blocks, tools and stop sequences, and max_tokens. Everything else passes
 * through untouched to Anthropic providers (loose objects). Messages name the
 * parameter, never its value.
 */
export const MESSAGES_LIMITS = {
  ...LIMITS,
  /** stop_sequences entries. */
  stopSequences: 1_024,
} as const;

const block = z.looseObject({ type: z.string({ error: 'each content block needs a type' }) });
const content = z.union([z.string(), z.array(block).max(MESSAGES_LIMITS.items)], { error: 'content must be a string or an array of content blocks' });
const message = z.looseObject({
  role: z.enum(['user', 'assistant'], { error: "each message's role must be user or assistant" }),
  content,
});
const common = {
  model: z.string({ error: 'model: Field required' }).min(1, 'model: Field required'),
  messages: z.array(message, { error: 'messages: Field required' }).min(1, 'at least one message is required').max(MESSAGES_LIMITS.items),
  system: content.optional(),
  tools: z.array(z.looseObject({})).max(MESSAGES_LIMITS.tools).optional(),
  tool_choice: z.looseObject({ type: z.string() }).optional(),
};

export type MessagesBody = Record<string, unknown> & {
  model: string;
  max_tokens: number;
  messages: Array<Record<string, unknown> & { role: 'user' | 'assistant'; content: string | Array<Record<string, unknown> & { type: string }> }>;
  stream?: boolean;
};

export const messagesSchema = z.looseObject({
  ...common,
  max_tokens: z.number({ error: 'max_tokens: Field required' }).int().positive().max(MESSAGES_LIMITS.outputTokens),
  stop_sequences: z.array(z.string()).max(MESSAGES_LIMITS.stopSequences).optional(),
  stream: z.boolean().optional(),
  metadata: z.looseObject({}).optional(),
}) as unknown as z.ZodType<MessagesBody>;

export const countTokensSchema = z.looseObject(common) as unknown as z.ZodType<Omit<MessagesBody, 'max_tokens'>>;

export function firstMessagesIssue(error: z.ZodError): string {
  const issue = error.issues[0]!;
  const path = issue.path.map(String).join('.');
  return path && !issue.message.startsWith(path) ? `${path}: ${issue.message}` : issue.message;
}

/** The Anthropic API version sent upstream when the client named none. */
export const DEFAULT_ANTHROPIC_VERSION = '2023-06-01';

/**
 * The `anthropic-beta` names passed to Anthropic providers: only betas that change nothing
 * Anthropic bills beyond what usage records meter (input, cache reads, five-minute and
 * one-hour cache writes, output). Any other (e.g. `context-1m-2025-08-07`, which Anthropic
 * bills at a long-context premium) is refused with 400 until its billing is metered.
 * docs/anthropic.md lists them; keep the two in step.
 */
export const ALLOWED_ANTHROPIC_BETAS: ReadonlySet<string> = new Set([
  'prompt-caching-2024-07-31',
  'extended-cache-ttl-2025-04-11',
  'token-efficient-tools-2025-02-19',
  'interleaved-thinking-2025-05-14',
  'fine-grained-tool-streaming-2025-05-14',
  'output-128k-2025-02-19',
  'token-counting-2024-11-01',
  'claude-code-20250219',
]);

const BETA_HEADER = /^[0-9A-Za-z._,\s-]+$/;
const MAX_BETA_HEADER = 1_024;

function betaNames(beta: string): string[] {
  return beta.split(',').map((b) => b.trim()).filter((b) => b.length > 0);
}

/**
 * Why the request's `anthropic-beta` cannot be forwarded, as a client message
 * (naming the refused beta, an identifier of at most 64 characters), or
 * undefined when every beta it names is allowed (or it has none).
 */
export function refusedBeta(headers: Record<string, string | string[] | undefined>): string | undefined {
  const beta = single(headers['anthropic-beta']);
  if (beta === undefined || beta.trim() === '') return undefined;
  if (beta.length > MAX_BETA_HEADER || !BETA_HEADER.test(beta)) return 'anthropic-beta: not a comma-separated list of beta names.';
  const refused = betaNames(beta).find((b) => !ALLOWED_ANTHROPIC_BETAS.has(b));
  if (refused === undefined) return undefined;
  return `anthropic-beta: the beta '${refused.slice(0, 64)}' is not offered through this gateway (it may be billed in ways usage records do not meter).`;
}

/** anthropic-version as the client sent it and the allowed betas of anthropic-beta: identifiers and dates only, bounded. */
export function anthropicHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  const version = single(headers['anthropic-version']);
  out['anthropic-version'] = version && /^[0-9A-Za-z._-]{1,32}$/.test(version) ? version : DEFAULT_ANTHROPIC_VERSION;
  const beta = single(headers['anthropic-beta']);
  if (beta && beta.length <= MAX_BETA_HEADER && BETA_HEADER.test(beta)) {
    // Requests with other betas are refused before they get here (refusedBeta); this keeps any that slip through from leaving.
    const allowed = betaNames(beta).filter((b) => ALLOWED_ANTHROPIC_BETAS.has(b));
    if (allowed.length > 0) out['anthropic-beta'] = allowed.join(',');
  }
  return out;
}

function single(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v.join(',') : v;
}
