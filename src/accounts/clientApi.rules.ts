/**
 * The client read API's rules and field lists (issue 22): input bounds, the
 * activity cursor, and what each response field means. The field lists are the
 * one description of the responses: the gateway's OpenAPI document is built
 * from them, and docs/client-api.md follows them.
 */

/** The longest activity range, in days (inclusive of both ends). */
export const ACTIVITY_MAX_DAYS = 366;
/** Activity rows per page: default and most. */
export const ACTIVITY_DEFAULT_LIMIT = 100;
export const ACTIVITY_MAX_LIMIT = 1000;
/** Days in the default activity range (ending today, UTC). */
export const ACTIVITY_DEFAULT_DAYS = 30;
/** Request ids are `req-<uuid>`; anything longer or with other characters cannot be one. */
export const REQUEST_ID_PATTERN = /^[A-Za-z0-9_-]{1,100}$/;

const DAY_PATTERN = /^\d{4}-\d{2}-\d{2}$/;
const DAY_MS = 86_400_000;

/** A YYYY-MM-DD that names a real calendar day, as a UTC midnight; null otherwise. */
export function parseDay(value: string): Date | null {
  if (!DAY_PATTERN.test(value)) return null;
  const d = new Date(`${value}T00:00:00Z`);
  if (Number.isNaN(d.getTime()) || d.toISOString().slice(0, 10) !== value) return null;
  return d;
}

export function dayString(d: Date): string {
  return d.toISOString().slice(0, 10);
}

/** Days from `from` to `to`, both included. */
export function daysInRange(from: Date, to: Date): number {
  return Math.round((to.getTime() - from.getTime()) / DAY_MS) + 1;
}

export function addDays(d: Date, days: number): Date {
  return new Date(d.getTime() + days * DAY_MS);
}

/**
 * The activity cursor: the grouped values of a page's last row and the grouping
 * they belong to, base64url JSON. Opaque to clients; checked on the way back in,
 * since it is client input like any other.
 */
export function encodeActivityCursor(groupBy: readonly string[], last: readonly string[]): string {
  return Buffer.from(JSON.stringify({ g: groupBy.join(','), k: last }), 'utf8').toString('base64url');
}

const CURSOR_VALUE: Record<string, RegExp> = {
  day: DAY_PATTERN,
  model: /^[\s\S]{0,200}$/,
  key: /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
};

/** The cursor's values when it was made for this grouping and each value has its dimension's form; null otherwise. */
export function decodeActivityCursor(cursor: string, groupBy: readonly string[]): string[] | null {
  if (cursor.length > 600 || !/^[A-Za-z0-9_-]+$/.test(cursor)) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    return null;
  }
  if (typeof parsed !== 'object' || parsed === null) return null;
  const { g, k } = parsed as { g?: unknown; k?: unknown };
  if (g !== groupBy.join(',') || !Array.isArray(k) || k.length !== groupBy.length) return null;
  for (const [i, v] of k.entries()) {
    if (typeof v !== 'string' || !CURSOR_VALUE[groupBy[i]!]!.test(v)) return null;
  }
  return k as string[];
}

/** One CSV field (RFC 4180): quoted when it holds a comma, quote or line break. */
export function csvField(value: string | number | null | undefined): string {
  const s = value === null || value === undefined ? '' : String(value);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** A response field: its JSON type and what it means (the OpenAPI document and the docs page follow these). */
export interface FieldDoc {
  name: string;
  type: 'string' | 'integer' | 'boolean' | 'object' | 'array';
  nullable?: boolean;
  /** For arrays: the type of the items. */
  items?: 'string' | 'integer';
  /** For strings: 'decimal' (an amount), 'date-time', 'date'. */
  format?: 'decimal' | 'date-time' | 'date';
  enum?: readonly string[];
  description: string;
}

export const KEY_FIELDS: readonly FieldDoc[] = [
  { name: 'id', type: 'string', description: 'The key’s id.' },
  { name: 'name', type: 'string', nullable: true, description: 'The name given to the key, if any.' },
  { name: 'label', type: 'string', description: 'The key’s display prefix (its first characters), OpenRouter’s name for it.' },
  { name: 'prefix', type: 'string', description: 'The same display prefix, under the name the key endpoints (`/v1/keys`) use.' },
  { name: 'kind', type: 'string', enum: ['inference', 'management'], description: '`inference` keys make model calls; `management` keys manage the account’s keys and read its spend.' },
  { name: 'is_provisioning_key', type: 'boolean', description: 'True for a management key (OpenRouter’s name for the same thing).' },
  { name: 'created_at', type: 'string', format: 'date-time', description: 'When the key was created.' },
  { name: 'expires_at', type: 'string', format: 'date-time', nullable: true, description: 'When the key stops working; null: never.' },
  { name: 'rate_limit', type: 'object', description: '`{ requests, interval }`: requests per interval (`1m`) the key may make; `requests` is null when no limit applies.' },
  { name: 'limit', type: 'string', format: 'decimal', nullable: true, description: 'The key’s spend limit in the account’s currency, per window; null: no limit.' },
  { name: 'limit_reset', type: 'string', enum: ['daily', 'weekly', 'monthly'], nullable: true, description: 'The limit’s window, in UTC calendar terms (weekly from Monday); null: the limit covers the key’s whole life.' },
  { name: 'usage', type: 'string', format: 'decimal', description: 'Settled spend in the current window (the whole life when `limit_reset` is null).' },
  { name: 'limit_remaining', type: 'string', format: 'decimal', nullable: true, description: '`limit` minus `usage`, never below 0; null without a limit.' },
  { name: 'usage_daily', type: 'string', format: 'decimal', description: 'Settled spend since 00:00 UTC today.' },
  { name: 'usage_weekly', type: 'string', format: 'decimal', description: 'Settled spend since Monday 00:00 UTC.' },
  { name: 'usage_monthly', type: 'string', format: 'decimal', description: 'Settled spend since the 1st of the month, 00:00 UTC.' },
  { name: 'usage_lifetime', type: 'string', format: 'decimal', description: 'Settled spend in the key’s whole life.' },
  { name: 'window_start', type: 'string', format: 'date-time', nullable: true, description: 'First instant of the current window; null without a window.' },
  { name: 'next_reset', type: 'string', format: 'date-time', nullable: true, description: 'When the window resets (the next window’s first instant); null without a window.' },
  { name: 'currency', type: 'string', description: 'ISO 4217 code of the amounts.' },
];

export const CREDITS_FIELDS: readonly FieldDoc[] = [
  { name: 'balance', type: 'string', format: 'decimal', description: 'The account’s ledger balance: credits in, settled usage out. Negative when a postpaid account owes.' },
  { name: 'held', type: 'string', format: 'decimal', description: 'Reserved by requests in flight (open balance holds), not yet settled.' },
  { name: 'spendable', type: 'string', format: 'decimal', description: 'What may still be spent: balance − held + the credit limit (postpaid) or the overdraft allowance (prepaid).' },
  { name: 'credit_limit', type: 'string', format: 'decimal', description: 'How far below zero a postpaid account may go (0 for prepaid accounts).' },
  { name: 'plan', type: 'string', enum: ['prepaid', 'postpaid'], description: 'Prepaid accounts spend credit bought in advance; postpaid ones are invoiced.' },
  { name: 'currency', type: 'string', description: 'ISO 4217 code of the amounts.' },
];

export const GENERATION_FIELDS: readonly FieldDoc[] = [
  { name: 'id', type: 'string', description: 'The request id (the `x-request-id` response header).' },
  { name: 'created_at', type: 'string', format: 'date-time', description: 'When the request arrived.' },
  { name: 'finished_at', type: 'string', format: 'date-time', description: 'When its answer ended.' },
  { name: 'api_key_id', type: 'string', description: 'The key that made it.' },
  { name: 'endpoint', type: 'string', description: 'The route: `chat.completions`, `completions`, `embeddings`, `responses`, `messages`, `messages.count_tokens`.' },
  { name: 'model', type: 'string', nullable: true, description: 'The model asked for; null when the request was refused before one was known.' },
  { name: 'provider_name', type: 'string', nullable: true, description: 'The provider that answered; null when none did.' },
  { name: 'status', type: 'integer', description: 'The HTTP status the gateway answered with.' },
  { name: 'error', type: 'string', nullable: true, description: 'The error code of a refused or failed request; null on success.' },
  { name: 'streamed', type: 'boolean', description: 'Whether the answer was streamed.' },
  { name: 'tokens_prompt', type: 'integer', description: 'Input tokens, cached and cache-writing ones included (OpenRouter’s name).' },
  { name: 'tokens_completion', type: 'integer', description: 'Output tokens, reasoning included.' },
  { name: 'native_tokens_reasoning', type: 'integer', description: 'The reasoning part of the output tokens.' },
  { name: 'usage', type: 'object', description: 'Normalised counts: `{ input_tokens, cache_read_tokens, cache_write_tokens, output_tokens, reasoning_tokens }`; input_tokens excludes the cache reads and writes.' },
  { name: 'usage_estimated', type: 'boolean', description: 'True when the provider reported no usage and the gateway estimated the counts.' },
  { name: 'total_cost', type: 'string', format: 'decimal', description: 'What the request cost, unrounded.' },
  { name: 'currency', type: 'string', description: 'ISO 4217 code of the cost.' },
  { name: 'settled', type: 'boolean', description: 'Whether the cost has been charged to the balance yet (usually within seconds).' },
  { name: 'latency', type: 'integer', description: 'Milliseconds from arrival to the end of the answer.' },
  { name: 'generation_time', type: 'integer', nullable: true, description: 'Milliseconds the provider took; null when no provider was called.' },
];

export const ACTIVITY_FIELDS: readonly FieldDoc[] = [
  { name: 'date', type: 'string', format: 'date', description: 'The UTC day (when grouped by `day`).' },
  { name: 'model', type: 'string', nullable: true, description: 'The model (when grouped by `model`); null for refusals without a model.' },
  { name: 'api_key_id', type: 'string', description: 'The key (when grouped by `key`).' },
  { name: 'requests', type: 'integer', description: 'Requests, refused ones included.' },
  { name: 'prompt_tokens', type: 'integer', description: 'Input tokens, cached and cache-writing ones included.' },
  { name: 'completion_tokens', type: 'integer', description: 'Output tokens, reasoning included.' },
  { name: 'reasoning_tokens', type: 'integer', description: 'The reasoning part of the output tokens.' },
  { name: 'input_tokens', type: 'integer', description: 'Input tokens that were neither read from nor written to a cache.' },
  { name: 'cache_read_tokens', type: 'integer', description: 'Input tokens read from the provider’s cache.' },
  { name: 'cache_write_tokens', type: 'integer', description: 'Input tokens written to the provider’s cache.' },
  { name: 'output_tokens', type: 'integer', description: 'Output tokens (as completion_tokens).' },
  { name: 'usage', type: 'string', format: 'decimal', description: 'The cost of the group’s settled usage.' },
];

/** The CSV columns of activity, in order; columns of dimensions not grouped by are left out. */
export const ACTIVITY_CSV_COLUMNS = ACTIVITY_FIELDS.map((f) => f.name);
