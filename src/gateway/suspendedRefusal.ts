/**
 * The refusal of a model call by a suspended account (docs/collections.md#suspension):
 * the same status, code and message on every model route, and the code in the
 * metering record. The account endpoints (/v1/key, /v1/credits...) are not refused.
 */

/** The error code, on every route and in the metering record (usage_events.error_type). */
export const SUSPENDED_CODE = 'account_suspended';
/** 403: the request is understood and will not be served; no client SDK retries it. */
export const SUSPENDED_STATUS = 403;
/**
 * OpenAI's error type for it: `insufficient_quota` is the type OpenAI clients already
 * treat as a billing matter that retrying does not fix (it is also the type of the key's
 * spend limit and the balance refusals); `code` tells the suspension apart. On the
 * Anthropic routes the type is `permission_error` (403).
 */
export const SUSPENDED_OPENAI_TYPE = 'insufficient_quota';

/** An address plain enough to put in a message: no spaces, quotes, angle brackets or control characters. */
const PLAIN_EMAIL = /^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})+$/;

/**
 * The message: suspended, contact billing (at the issuer's address when it is a plain one).
 * Dunning suspends for an unpaid invoice, staff may for another reason; the key cache
 * carries only the flag, so the message names the usual cause without asserting it.
 */
export function suspendedMessage(billingContact?: string | null): string {
  const at = billingContact && billingContact.length <= 254 && PLAIN_EMAIL.test(billingContact) ? ` at ${billingContact}` : '';
  return `API access for this account is suspended, usually because of an unpaid invoice. Please contact billing${at} to restore access; retrying will not help until then.`;
}
