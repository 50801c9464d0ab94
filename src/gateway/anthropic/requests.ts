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

/** anthropic-version and anthropic-beta as the client sent them: identifiers and dates only, bounded. */
export function anthropicHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  const version = single(headers['anthropic-version']);
  out['anthropic-version'] = version && /^[0-9A-Za-z._-]{1,32}$/.test(version) ? version : DEFAULT_ANTHROPIC_VERSION;
  const beta = single(headers['anthropic-beta']);
  if (beta && beta.length <= 1_024 && /^[0-9A-Za-z._,\s-]+$/.test(beta)) out['anthropic-beta'] = beta;
  return out;
}

function single(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v.join(',') : v;
}
