import type Decimal from 'decimal.js';
import { minorUnits, Money } from '../shared/money.rules';

/**
 * Hosted checkout rules, pure (docs/ledger.md#hosted-checkout): what amount a
 * customer may top up by card, its minor units for the provider, and the
 * addresses the provider sends the customer back to, which are always on the
 * console's configured public base URL: nothing from a request chooses a host.
 */

/** The most the provider takes in one payment, in minor units (Stripe: 99,999,999). */
export const PROVIDER_MAX_MINOR = 99_999_999;

/** Longest return address we hand the provider. */
const MAX_URL_LENGTH = 2_000;

/** Stripe replaces this in a success address with the session's id. */
export const SESSION_ID_PLACEHOLDER = '{CHECKOUT_SESSION_ID}';

export class CheckoutRuleError extends Error {
  override name = 'CheckoutRuleError';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

const AMOUNT = /^\d{1,15}(\.\d{1,20})?$/;

/**
 * A top-up amount: a decimal string ("25", "25.50"), positive, at most the
 * currency's minor-unit digits after the point, within [min, max] (in the
 * currency). Returns the amount and its minor units (an exact integer).
 */
export function topUpAmount(raw: unknown, currency: string, bounds: { min: string; max: string }): { amount: Decimal; minor: number } {
  if (typeof raw !== 'string' || raw.length > 40 || !AMOUNT.test(raw)) {
    throw new CheckoutRuleError('amount', 'amount must be a positive decimal string such as "25.00" (no sign, exponent or separators)');
  }
  const digits = minorUnits(currency);
  const places = raw.includes('.') ? raw.length - raw.indexOf('.') - 1 : 0;
  if (places > digits) {
    throw new CheckoutRuleError('amount', `amount has more decimal places than ${currency.toUpperCase()} allows (${digits})`);
  }
  const amount = new Money(raw);
  if (amount.lt(bounds.min) || amount.gt(bounds.max)) {
    throw new CheckoutRuleError('amount', `amount must be between ${bounds.min} and ${bounds.max} ${currency.toUpperCase()}`);
  }
  return { amount, minor: toMinor(amount, currency) };
}

/** An amount in the currency's minor units as an exact integer the provider accepts; throws past the provider's limit. */
export function toMinor(amount: Decimal, currency: string): number {
  const minor = new Money(amount).times(new Money(10).pow(minorUnits(currency)));
  if (!minor.isInteger() || minor.lte(0)) throw new CheckoutRuleError('amount', 'amount is not a whole number of minor units');
  if (minor.gt(PROVIDER_MAX_MINOR)) throw new CheckoutRuleError('amount', 'amount is more than the payment provider takes in one payment; pay by bank transfer');
  return minor.toNumber();
}

/**
 * A return address on the console: `requested` is a path ("/app/billing") or
 * an absolute URL on the base's origin; absent, `fallback` (a path). Anything
 * on another origin, outside the base's path, or not http(s) is refused.
 */
export function returnUrl(publicBaseUrl: string, requested: unknown, fallback: string, field: string): string {
  const base = new URL(publicBaseUrl.endsWith('/') ? publicBaseUrl : `${publicBaseUrl}/`);
  let wanted = requested === undefined || requested === null || requested === '' ? fallback : requested;
  if (typeof wanted !== 'string' || wanted.length > MAX_URL_LENGTH) throw new CheckoutRuleError(field, `${field} must be a path on the console (at most ${MAX_URL_LENGTH} characters)`);
  // A path is taken relative to the base's origin; "//host" and "\\host" are other hosts to a browser, never paths.
  if (/^[/\\]{2}/.test(wanted) || /[\\\s]/.test(wanted)) throw new CheckoutRuleError(field, `${field} must be on ${base.origin}`);
  // A path is under the base's own path (a console behind a prefix keeps it).
  if (wanted.startsWith('/')) wanted = `${base.origin}${base.pathname.replace(/\/$/, '')}${wanted}`;
  let url: URL;
  try {
    url = new URL(wanted);
  } catch {
    throw new CheckoutRuleError(field, `${field} must be a path on the console`);
  }
  if (url.origin !== base.origin || (url.protocol !== 'https:' && url.protocol !== 'http:') || url.username || url.password || !url.pathname.startsWith(base.pathname)) {
    throw new CheckoutRuleError(field, `${field} must be on ${base.origin}${base.pathname}`);
  }
  // The provider fills in its placeholder only as written, not percent-encoded.
  return url.href.replaceAll(encodeURIComponent(SESSION_ID_PLACEHOLDER), SESSION_ID_PLACEHOLDER);
}

/** The parts of a provider's checkout.session.* event we act on; undefined when it lacks them. */
export interface SessionEvent {
  sessionId: string;
  /** Our checkout id (client_reference_id and metadata.checkout_id). */
  checkoutId: string | null;
  accountId: string | null;
  paymentIntentId: string | null;
  status: 'complete' | 'expired';
}

const PROVIDER_ID = /^[A-Za-z0-9_]{1,255}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function sessionEventOf(type: string, object: unknown): SessionEvent | undefined {
  if (type !== 'checkout.session.completed' && type !== 'checkout.session.expired') return undefined;
  if (!object || typeof object !== 'object') return undefined;
  const o = object as Record<string, unknown>;
  if (typeof o.id !== 'string' || !PROVIDER_ID.test(o.id)) return undefined;
  const metadata = o.metadata && typeof o.metadata === 'object' ? (o.metadata as Record<string, unknown>) : {};
  const uuidOr = (v: unknown) => (typeof v === 'string' && UUID.test(v) ? v.toLowerCase() : null);
  const pi = typeof o.payment_intent === 'string' ? o.payment_intent : o.payment_intent && typeof o.payment_intent === 'object' ? (o.payment_intent as { id?: unknown }).id : null;
  return {
    sessionId: o.id,
    checkoutId: uuidOr(o.client_reference_id) ?? uuidOr(metadata.checkout_id),
    accountId: uuidOr(metadata.account_id),
    paymentIntentId: typeof pi === 'string' && PROVIDER_ID.test(pi) ? pi : null,
    status: type === 'checkout.session.completed' ? 'complete' : 'expired',
  };
}
