import { ACCOUNT_EVENT_TYPES, type AccountEventType } from '../notifications/events.rules';
/**
 * Webhook rules (docs/webhooks.md): which events exist, the bounds of an
 * endpoint, the retry schedule of a delivery and when an endpoint is
 * disabled. Pure: the delivery workflow imports this file.
 */

/** The account events an endpoint may subscribe to: every account event (src/notifications/events.rules.ts). */
export const WEBHOOK_EVENT_TYPES = ACCOUNT_EVENT_TYPES;
export type WebhookEventType = AccountEventType;

export const MAX_URL_LENGTH = 2048;
/** Per account: each endpoint adds a delivery (and a workflow) to every event. */
export const MAX_ENDPOINTS_PER_ACCOUNT = 10;
/** At most this much of a receiver's answer is read (and discarded) per attempt. */
export const MAX_RESPONSE_BYTES = 64 * 1024;

export interface RetryPolicy {
  initialMs: number;
  maxIntervalMs: number;
  /** No attempt starts later than this after the first one. */
  windowMs: number;
}

/** The wait after the `attempt`-th failed attempt (1-based): doubling from initialMs, capped at maxIntervalMs. */
export function retryDelayMs(attempt: number, policy: RetryPolicy): number {
  const exp = Math.min(Math.max(attempt - 1, 0), 40);
  return Math.min(policy.initialMs * 2 ** exp, policy.maxIntervalMs);
}

/**
 * When to try again after the `attempt`-th failure at `nowMs` (epoch ms) of a
 * delivery first tried at `firstAttemptMs`, or null when the next attempt
 * would fall outside the retry window: the delivery has failed.
 */
export function nextAttemptAtMs(attempt: number, firstAttemptMs: number, nowMs: number, policy: RetryPolicy): number | null {
  const at = nowMs + retryDelayMs(attempt, policy);
  return at - firstAttemptMs > policy.windowMs ? null : at;
}

export interface DisablePolicy {
  disableAfterFailures: number;
  disableMinFailingS: number;
}

/** A run of failures long enough, in count and in time, to stop sending to the endpoint. */
export function shouldDisable(consecutiveFailures: number, failingSince: Date | null, now: Date, policy: DisablePolicy): boolean {
  if (consecutiveFailures < policy.disableAfterFailures) return false;
  const since = failingSince ?? now;
  return now.getTime() - since.getTime() >= policy.disableMinFailingS * 1000;
}

/** A response status that counts as delivered (Standard Webhooks: any 2xx). */
export const isSuccessStatus = (status: number) => status >= 200 && status < 300;

/**
 * The body of a delivery, in the Standard Webhooks shape: type, timestamp and
 * data. data is the event's own data (ids, amounts as strings, links) with the
 * event and account ids; nothing else is added, so nothing personal can be.
 */
export function webhookPayload(event: { id: string; account_id: string; type: string; occurred_at: Date; data: Record<string, unknown> }): string {
  return JSON.stringify({
    type: event.type,
    timestamp: event.occurred_at.toISOString(),
    data: { ...event.data, eventId: event.id, accountId: event.account_id },
  });
}

/** Why a URL cannot be a webhook endpoint (scheme, credentials, length), or null. The host is checked against the address policy elsewhere. */
export function endpointUrlProblem(raw: string): string | null {
  if (raw.length > MAX_URL_LENGTH) return `must be at most ${MAX_URL_LENGTH} characters`;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'must be an absolute http(s) URL';
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return 'must be an http or https URL';
  if (url.username || url.password) return 'must not contain credentials';
  if (url.hash) return 'must not contain a fragment';
  if (!url.hostname) return 'must name a host';
  return null;
}
