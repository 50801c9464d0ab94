import type Decimal from 'decimal.js';
import { windowBounds, type LimitWindow } from './keyWindow.rules';
import { Money } from '../shared/money.rules';

/**
 * The balance gate's decision for a key with a spend limit (issue 22), the
 * same reserve-then-settle rule as for the balance, applied to the key:
 * a slice for the key may be reserved only while what the key spent in its
 * window (settled, from usage_daily_keys) plus what its holds still reserve
 * (amount - settled) plus the request's bound stays within the limit. So
 * across any number of gateway instances the key's spend in a window never
 * passes its limit, except by what requests in flight cost beyond their
 * reservation (the balance's overdraft bound, docs/ledger.md "Balance gate").
 *
 * acquireKeyHold in src/accounts/keyHolds.data.ts applies keyHoldCap under
 * the key's lock; src/gateway/balanceGate.ts spends the slice on the hot path.
 */

export interface KeyLimitState {
  limit: Decimal;
  /** Settled spend of the key in the current window (all of its life for a lifetime limit). */
  windowSpend: Decimal;
  /** What the key's holds still reserve: reserved by requests in flight or spent and not yet settled. */
  held: Decimal;
}

/** What the key may still reserve in its window; never below zero. */
export function keyRemaining(s: KeyLimitState): Decimal {
  return Money.max(s.limit.minus(s.windowSpend).minus(s.held), 0);
}

/**
 * The most a slice for this key may reserve: undefined when the key cannot
 * cover even the request's bound (`need`), else what was wanted, up to what
 * the key has left. The account's balance then caps it again (holdGrant).
 */
export function keyHoldCap(s: KeyLimitState, need: Decimal, wanted: Decimal): Decimal | undefined {
  const left = keyRemaining(s);
  if (left.lt(need)) return undefined;
  return Money.min(wanted, left);
}

/** A refusal by the key's limit, with what a client needs to know: when its window starts over (null: never, a lifetime limit). */
export interface KeyLimitRefusal {
  limit: Decimal;
  window: LimitWindow | null;
  resetAt: Date | null;
}

export function keyLimitRefusal(limit: Decimal, window: LimitWindow | null, at: Date): KeyLimitRefusal {
  return { limit, window, resetAt: windowBounds(window, at).nextReset };
}

const WINDOW_WORDS: Record<LimitWindow, string> = { daily: 'daily', weekly: 'weekly', monthly: 'monthly' };

/** The refusal's message: which limit, and when the key works again. */
export function keyLimitMessage(r: KeyLimitRefusal): string {
  const which = r.window ? `${WINDOW_WORDS[r.window]} spend limit of ${r.limit.toFixed()}` : `lifetime spend limit of ${r.limit.toFixed()}`;
  const when = r.resetAt
    ? `The limit resets at ${r.resetAt.toISOString()}.`
    : 'The limit has no reset window; a management key of the account can raise it.';
  return `This API key reached its ${which} (spent in the window plus reserved by requests in flight leaves less than this request may cost). ${when}`;
}

/** Seconds from `now` until the window resets, at least 1 (for Retry-After); null for a lifetime limit. */
export function secondsUntilReset(r: KeyLimitRefusal, now: Date): number | null {
  return r.resetAt ? Math.max(1, Math.ceil((r.resetAt.getTime() - now.getTime()) / 1000)) : null;
}
