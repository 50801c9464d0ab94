import type { ServerResponse } from 'node:http';
import { keyLimitMessage, type KeyLimitRefusal } from '../accounts/keyLimit.rules';

/** The error code of a request refused by its key's spend limit, on every route and in the metering record. */
export const KEY_LIMIT_CODE = 'key_spend_limit_exceeded';
/** OpenRouter answers a key over its limit with 403 (402 is the account's balance), so clients written for it tell them apart. */
export const KEY_LIMIT_STATUS = 403;

/**
 * Sets the refusal's headers (when the window resets, as an ISO time and as
 * Retry-After seconds; neither for a lifetime limit) and returns its message.
 */
export function keyLimitRefusal(res: ServerResponse, refusal: KeyLimitRefusal, retryAfter: number | null): string {
  if (refusal.resetAt && !res.headersSent) {
    res.setHeader('x-ratelimit-reset-spend', refusal.resetAt.toISOString());
    if (retryAfter !== null) res.setHeader('retry-after', String(retryAfter));
  }
  return keyLimitMessage(refusal);
}
