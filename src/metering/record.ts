/**
 * The metering record: everything MixRoute keeps about one forwarded request.
 * It is built field by field from an allowlist (`usageRecord`), and no field
 * can hold request or response content: ids, names, counts, codes, times,
 * and the two network facts the privacy policy names (source IP, User-Agent).
 */
export interface UsageRecord {
  /** Record format version, so a journal written by an older gateway still replays. */
  v: 1;
  requestId: string;
  occurredAt: string; // ISO, request start
  finishedAt: string; // ISO
  accountId: string;
  apiKeyId: string;
  userId: string | null;
  endpoint: RecordEndpoint;
  model: string | null; // public model name, null when it was unknown
  provider: string | null;
  upstreamModel: string | null;
  priceId: string | null;
  /** The balance hold the request was reserved against, if any. */
  holdId: string | null;
  statusCode: number;
  errorType: string | null; // our error type or the provider's error code, never its message
  stream: boolean;
  inputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
  /** The one-hour part of cacheWriteTokens (absent in journals written before it existed). */
  cacheWrite1hTokens?: number;
  outputTokens: number;
  reasoningTokens: number;
  usageEstimated: boolean;
  /** A token count was beyond MAX_TOKEN_COUNT, negative or not a count, and was clamped (absent in journals written before it existed). */
  usageClamped?: boolean;
  cost: string; // decimal string, unrounded (12 dp)
  currency: string;
  latencyMs: number;
  upstreamLatencyMs: number | null;
  sourceIp: string | null;
  userAgent: string | null;
  gatewayInstance: string;
}

export type Endpoint = 'chat.completions' | 'completions' | 'embeddings' | 'responses';
/** Every endpoint a record can name: the OpenAI ones and Anthropic's Messages API (src/gateway/anthropic). */
export type RecordEndpoint = Endpoint | 'messages' | 'messages.count_tokens';

const MAX_USER_AGENT = 512;
const MAX_ERROR_TYPE = 64;

/**
 * The largest token count one request may report per bucket: 10^10, a
 * thousand times the largest context window on offer. usage_events holds
 * bigint, but sums of counts must stay exact as JS numbers (2^53) through
 * settlement and usage_hourly, so a provider's absurd report is clamped to
 * this and the event flagged (usage_clamped) for billing staff, instead of
 * overflowing a sum later. The cost stays what the gateway computed.
 */
export const MAX_TOKEN_COUNT = 10_000_000_000;

const int = (n: number) => (Number.isFinite(n) && n > 0 ? Math.round(n) : 0);

/** A token count within [0, MAX_TOKEN_COUNT]; `clamped` says whether the reported one was outside. */
function tokens(n: number, flag: { clamped: boolean }): number {
  if (typeof n !== 'number' || Number.isNaN(n) || n < 0) {
    flag.clamped = true;
    return 0;
  }
  if (n > MAX_TOKEN_COUNT) {
    flag.clamped = true;
    return MAX_TOKEN_COUNT;
  }
  return Math.round(n);
}

/** Copies exactly the allowed fields, clipping the free-text metadata to sane lengths. */
export function usageRecord(fields: Omit<UsageRecord, 'v' | 'holdId' | 'usageClamped'> & { holdId?: string | null; usageInvalid?: boolean }): UsageRecord {
  // A reported count that was no count at all (see normalizeUsage) was clamped too, to what could be read.
  const flag = { clamped: fields.usageInvalid === true };
  const counts = {
    inputTokens: tokens(fields.inputTokens, flag),
    cacheReadTokens: tokens(fields.cacheReadTokens, flag),
    cacheWriteTokens: tokens(fields.cacheWriteTokens, flag),
    outputTokens: tokens(fields.outputTokens, flag),
    reasoningTokens: tokens(fields.reasoningTokens, flag),
  };
  return {
    v: 1,
    requestId: fields.requestId,
    occurredAt: fields.occurredAt,
    finishedAt: fields.finishedAt,
    accountId: fields.accountId,
    apiKeyId: fields.apiKeyId,
    userId: fields.userId,
    endpoint: fields.endpoint,
    model: fields.model,
    provider: fields.provider,
    upstreamModel: fields.upstreamModel,
    priceId: fields.priceId,
    holdId: fields.holdId ?? null,
    statusCode: fields.statusCode,
    errorType: fields.errorType === null ? null : sanitizeCode(fields.errorType).slice(0, MAX_ERROR_TYPE),
    stream: fields.stream,
    ...counts,
    // Only when there are any: records (and journals) of every other request keep their shape.
    ...(fields.cacheWrite1hTokens ? { cacheWrite1hTokens: Math.min(tokens(fields.cacheWrite1hTokens, flag), counts.cacheWriteTokens) } : {}),
    usageEstimated: fields.usageEstimated,
    usageClamped: flag.clamped,
    cost: fields.cost,
    currency: fields.currency,
    latencyMs: int(fields.latencyMs),
    upstreamLatencyMs: fields.upstreamLatencyMs === null ? null : int(fields.upstreamLatencyMs),
    sourceIp: fields.sourceIp,
    userAgent: fields.userAgent === null ? null : fields.userAgent.slice(0, MAX_USER_AGENT),
    gatewayInstance: fields.gatewayInstance,
  };
}

/** Error codes are identifiers; anything else (a provider echoing text) is reduced to "upstream_error". */
function sanitizeCode(code: string): string {
  return /^[A-Za-z0-9_.:-]{1,64}$/.test(code) ? code : 'upstream_error';
}

/** The row for usage_events. */
export function usageEventRow(r: UsageRecord) {
  return {
    request_id: r.requestId,
    occurred_at: r.occurredAt,
    finished_at: r.finishedAt,
    account_id: r.accountId,
    api_key_id: r.apiKeyId,
    user_id: r.userId,
    endpoint: r.endpoint,
    model: r.model,
    provider: r.provider,
    upstream_model: r.upstreamModel,
    price_id: r.priceId,
    hold_id: r.holdId ?? null,
    status_code: r.statusCode,
    error_type: r.errorType,
    stream: r.stream,
    input_tokens: r.inputTokens,
    cache_read_tokens: r.cacheReadTokens,
    cache_write_tokens: r.cacheWriteTokens,
    cache_write_1h_tokens: r.cacheWrite1hTokens ?? 0,
    output_tokens: r.outputTokens,
    reasoning_tokens: r.reasoningTokens,
    usage_estimated: r.usageEstimated,
    usage_clamped: r.usageClamped === true,
    cost: r.cost,
    currency: r.currency,
    latency_ms: r.latencyMs,
    upstream_latency_ms: r.upstreamLatencyMs,
    source_ip: r.sourceIp,
    user_agent: r.userAgent,
    gateway_instance: r.gatewayInstance,
  };
}
