/**
 * Token usage in one schema, whatever the provider's convention. Pure: no I/O.
 *
 * The two conventions differ in one place that matters for billing:
 * - OpenAI (chat/completions `prompt_tokens`, Responses `input_tokens`): the input
 *   count INCLUDES the cached tokens, which are repeated in `*_tokens_details.cached_tokens`.
 * - Anthropic (`input_tokens`): the input count EXCLUDES the cache tokens, which are
 *   reported beside it as `cache_read_input_tokens` and `cache_creation_input_tokens`.
 * Reading one as the other either prices cached tokens twice or loses them, so every
 * count lands in exactly one bucket here and the price applies once per bucket.
 */

export interface NormalizedUsage {
  inputTokens: number; // uncached input tokens only
  cacheReadTokens: number; // input tokens read from the provider's prompt cache
  cacheWriteTokens: number; // input tokens written to the prompt cache (Anthropic's cache_creation_input_tokens), whatever their lifetime
  /** The one-hour part of cacheWriteTokens (priced apart from five-minute writes); absent means 0. */
  cacheWrite1hTokens?: number;
  outputTokens: number; // all output tokens, reasoning included
  reasoningTokens: number; // the reasoning part of outputTokens (also counted inside outputTokens)
  /** A count the provider reported was not one (negative, fractional, beyond 2^53) and was read as missing: the record is flagged usage_clamped. */
  invalid?: boolean;
}

export type UsageConvention = 'openai' | 'anthropic';

export const ZERO_USAGE: NormalizedUsage = Object.freeze({
  inputTokens: 0,
  cacheReadTokens: 0,
  cacheWriteTokens: 0,
  outputTokens: 0,
  reasoningTokens: 0,
});

/** Every input token, whatever its cache state (what the model actually read). */
export function totalInputTokens(u: NormalizedUsage): number {
  return u.inputTokens + u.cacheReadTokens + u.cacheWriteTokens;
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * A token count, or undefined when the value cannot be one. Garbage (negative,
 * fractional, NaN, Infinity, strings, beyond 2^53) is treated as missing rather than
 * coerced, so a broken provider response can never put NaN into a bill.
 */
function count(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v + 0 : undefined; // +0 turns -0 into 0
}

const COUNT_FIELDS = ['prompt_tokens', 'input_tokens', 'cache_read_input_tokens', 'cache_creation_input_tokens', 'completion_tokens', 'output_tokens', 'total_tokens'] as const;

function detail(parent: unknown, key: string): number | undefined {
  return isObj(parent) ? count(parent[key]) : undefined;
}

/**
 * Normalises a provider's `usage` object. Without `convention`, the presence of
 * Anthropic's cache fields selects 'anthropic', anything else 'openai'; an Anthropic
 * response without cache fields reads the same either way. The convention decides
 * only how `input_tokens` is read: `prompt_tokens` is OpenAI's name and always
 * includes the cache. Returns undefined when nothing countable is there (the caller
 * then estimates); `total_tokens` alone is not enough, it cannot be split.
 */
export function normalizeUsage(raw: unknown, convention?: UsageConvention): NormalizedUsage | undefined {
  if (!isObj(raw)) return undefined;
  const conv = convention ?? ('cache_read_input_tokens' in raw || 'cache_creation_input_tokens' in raw || 'cache_creation' in raw ? 'anthropic' : 'openai');

  const prompt = count(raw.prompt_tokens);
  const input = count(raw.input_tokens);
  const anthropicRead = count(raw.cache_read_input_tokens);
  // Anthropic splits writes by lifetime in cache_creation; its total is cache_creation_input_tokens.
  const write5m = detail(raw.cache_creation, 'ephemeral_5m_input_tokens');
  const write1h = detail(raw.cache_creation, 'ephemeral_1h_input_tokens');
  const anthropicWrite = count(raw.cache_creation_input_tokens) ?? (write5m !== undefined || write1h !== undefined ? (write5m ?? 0) + (write1h ?? 0) : undefined);
  const output = count(raw.completion_tokens) ?? count(raw.output_tokens);
  const invalid = COUNT_FIELDS.some((f) => raw[f] !== undefined && raw[f] !== null && count(raw[f]) === undefined);
  if (prompt === undefined && input === undefined && output === undefined && anthropicRead === undefined && anthropicWrite === undefined) {
    return undefined;
  }

  let inputTokens: number;
  let cacheReadTokens: number;
  let cacheWriteTokens: number;
  const inclusive = prompt ?? (conv === 'openai' ? input : undefined);
  if (inclusive !== undefined) {
    // Cache counts are parts of the inclusive total: clamp them into it so the
    // uncached remainder never goes negative and the sum never exceeds what was reported.
    const read = detail(raw.prompt_tokens_details, 'cached_tokens') ?? detail(raw.input_tokens_details, 'cached_tokens') ?? anthropicRead ?? 0;
    cacheReadTokens = Math.min(read, inclusive);
    cacheWriteTokens = Math.min(anthropicWrite ?? 0, inclusive - cacheReadTokens);
    inputTokens = inclusive - cacheReadTokens - cacheWriteTokens;
  } else {
    // Anthropic: the cache counts sit beside input_tokens, so they are added, not subtracted.
    // OpenAI-style *_details are deliberately not read here: under this convention they
    // would describe tokens already inside input_tokens.
    inputTokens = input ?? 0;
    cacheReadTokens = anthropicRead ?? 0;
    cacheWriteTokens = anthropicWrite ?? 0;
  }

  // No output count (embeddings): whatever total_tokens reports beyond the input is
  // output, so nothing the provider counted is lost; usually that is 0.
  const allInput = inputTokens + cacheReadTokens + cacheWriteTokens;
  const total = count(raw.total_tokens);
  const outputTokens = output ?? (total !== undefined ? Math.max(total - allInput, 0) : 0);
  // Reasoning is a part of output (it is never billed on its own), so it cannot exceed it.
  const reasoning = detail(raw.completion_tokens_details, 'reasoning_tokens') ?? detail(raw.output_tokens_details, 'reasoning_tokens') ?? 0;

  const cacheWrite1hTokens = Math.min(write1h ?? 0, cacheWriteTokens);
  return {
    inputTokens,
    cacheReadTokens,
    cacheWriteTokens,
    ...(cacheWrite1hTokens > 0 ? { cacheWrite1hTokens } : {}),
    outputTokens,
    reasoningTokens: Math.min(reasoning, outputTokens),
    ...(invalid ? { invalid } : {}),
  };
}
