import type Decimal from 'decimal.js';
import { Money, toAmountString } from '../shared/money.rules';

/**
 * When an account event fires (issue 22; docs/notifications.md). Every rule
 * here compares one change of money, before and after, so an event fires on
 * the change that crosses a level and never on the ones that stay on one
 * side of it: once per crossing, not once per request. The dedupe keys make
 * the same crossing, decided again by a retried settlement or top-up, insert
 * nothing the second time (account_events.dedupe_key is UNIQUE).
 */

export const ACCOUNT_EVENT_TYPES = [
  'balance.low',
  'balance.depleted',
  'balance.recovered',
  'key.limit_threshold',
  'key.limit_reached',
  'topup.succeeded',
  'invoice.finalized',
  'credit_note.created',
  'invoice.payment_due',
  'invoice.overdue',
  'invoice.paid',
  'account.suspended',
  'account.reinstated',
  'subprocessor.announced',
  'account.details_changed',
] as const;
export type AccountEventType = (typeof ACCOUNT_EVENT_TYPES)[number];

/** At most this many low-balance thresholds per account (the column's CHECK says the same). */
export const MAX_LOW_BALANCE_THRESHOLDS = 5;
/** At most this many key alert percents (api_keys_alert_percents_bounded). */
export const MAX_KEY_ALERT_PERCENTS = 5;

/**
 * The amount the balance events watch: the balance, plus the credit limit on a
 * postpaid plan. It is spendable (ledger.rules.ts) without two parts: holds,
 * which rise and fall with every request in flight and would make an alert
 * flicker, and the prepaid overdraft allowance, which is a tolerance for
 * rounding, not money the client has.
 */
export function alertedAmount(a: { plan: 'prepaid' | 'postpaid'; balance: Decimal; creditLimit: Decimal }): Decimal {
  return a.plan === 'postpaid' ? a.balance.plus(a.creditLimit) : a.balance;
}

export interface BalanceCrossing {
  type: 'balance.low' | 'balance.depleted' | 'balance.recovered';
  /** The threshold crossed; '0' for depleted (and for recovered when the account has no thresholds). */
  threshold: string;
}

/**
 * The balance events of one change from `before` to `after` (alertedAmount):
 * - `balance.low` for each threshold t with before >= t > after (several at
 *   once when one change falls past several);
 * - `balance.depleted` when before > 0 >= after;
 * - `balance.recovered` when the amount comes back to the highest threshold
 *   or above (before < top <= after), or with no thresholds, from 0 or less to
 *   above 0. Coming back past a lower threshold only is not a recovery: the
 *   account is still below the level it asked to be warned at.
 */
export function balanceCrossings(before: Decimal, after: Decimal, thresholds: readonly Decimal[]): BalanceCrossing[] {
  const out: BalanceCrossing[] = [];
  if (after.lt(before)) {
    for (const t of [...thresholds].sort((x, y) => y.comparedTo(x))) {
      if (before.gte(t) && after.lt(t)) out.push({ type: 'balance.low', threshold: toAmountString(t) });
    }
    if (before.gt(0) && after.lte(0)) out.push({ type: 'balance.depleted', threshold: '0' });
  } else if (after.gt(before)) {
    if (thresholds.length > 0) {
      const top = Money.max(...thresholds);
      if (before.lt(top) && after.gte(top)) out.push({ type: 'balance.recovered', threshold: toAmountString(top) });
    } else if (before.lte(0) && after.gt(0)) {
      out.push({ type: 'balance.recovered', threshold: '0' });
    }
  }
  return out;
}

/**
 * A balance event's dedupe key: the crossing and the ledger entry that caused
 * it. An entry is posted once (its own idempotency key), so its crossing is
 * recorded once; a later entry crossing the same threshold again is a new
 * crossing with a key of its own.
 */
export function balanceDedupeKey(accountId: string, c: BalanceCrossing, entryKey: string): string {
  return `${c.type}:${accountId}:${c.threshold}:${entryKey}`;
}

/** A key's spend-limit window kind (api_keys.limit_window); null is a lifetime limit. */
export type KeyLimitWindow = 'daily' | 'weekly' | 'monthly' | null;

/**
 * The window rule, windowBounds of src/accounts/keyWindow.rules.ts, passed in
 * by the caller: the accounts folder depends on the ledger, which records
 * events, so this folder does not import it.
 */
export type KeyWindowFn = (window: KeyLimitWindow, at: Date) => { start: Date | null; nextReset: Date | null };

export interface KeyLimitState {
  keyId: string;
  limit: Decimal;
  /** The start of the key's current window; null for a lifetime limit. */
  windowStart: Date | null;
  percents: readonly number[];
}

/** The first UTC day of a window (for the daily aggregate), or null for a key's whole life. */
export const windowFirstDayOf = (start: Date | null): string | null => (start ? start.toISOString().slice(0, 10) : null);

export interface KeyCrossing {
  type: 'key.limit_threshold' | 'key.limit_reached';
  percent: number;
  dedupeKey: string;
}

/**
 * The key events for a key whose settled spend in its current window is
 * `spent`: one per alert percent reached (100 is `key.limit_reached`, any
 * other `key.limit_threshold`). Spend in a window only grows, so each percent
 * is crossed at most once per window: the dedupe key (key, window start,
 * limit, percent) makes the first settlement that reaches it insert the event
 * and every later one insert nothing. A changed limit is a new level to cross.
 */
export function keyCrossings(key: KeyLimitState, spent: Decimal): KeyCrossing[] {
  const windowLabel = key.windowStart ? key.windowStart.toISOString() : 'lifetime';
  const out: KeyCrossing[] = [];
  for (const percent of [...new Set(key.percents)].sort((a, b) => a - b)) {
    if (!Number.isInteger(percent) || percent < 1 || percent > 100) continue;
    if (spent.lt(key.limit.times(percent).div(100))) continue;
    out.push({
      type: percent === 100 ? 'key.limit_reached' : 'key.limit_threshold',
      percent,
      dedupeKey: `key.limit:${key.keyId}:${windowLabel}:${toAmountString(key.limit)}:${percent}`,
    });
  }
  return out;
}

/** The API paths an event links to (relative to the gateway's base URL). */
export const EVENT_LINKS = {
  credits: '/v1/credits',
  key: (keyId: string) => `/v1/keys/${keyId}`,
  activity: '/v1/activity',
} as const;

/**
 * The email of an event: what happened and where to look, with ids and
 * amounts only (the recipient's address is the one personal datum, and it is
 * on the envelope, not in the text).
 */
export function eventEmail(e: { id: string; type: AccountEventType; accountId: string; data: Record<string, unknown> }): { subject: string; body: string } {
  const d = e.data as Record<string, string | number | null | undefined | Record<string, string>>;
  const cur = typeof d.currency === 'string' ? ` ${d.currency}` : '';
  const subjects: Record<AccountEventType, string> = {
    'balance.low': `MixRoute: balance below ${String(d.threshold)}${cur}`,
    'balance.depleted': 'MixRoute: balance used up',
    'balance.recovered': 'MixRoute: balance recovered',
    'key.limit_threshold': `MixRoute: API key at ${String(d.percent)}% of its spend limit`,
    'key.limit_reached': 'MixRoute: API key reached its spend limit',
    'topup.succeeded': `MixRoute: top-up of ${String(d.amount)}${cur} credited`,
    'invoice.finalized': `MixRoute: invoice ${String(d.number)} issued`,
    'credit_note.created': `MixRoute: credit note ${String(d.number)} issued`,
    'invoice.payment_due': `MixRoute: invoice ${String(d.number)} is due on ${String(d.dueDate)}`,
    'invoice.overdue': `MixRoute: invoice ${String(d.number)} is overdue`,
    'invoice.paid': `MixRoute: invoice ${String(d.number)} paid`,
    'account.suspended': 'MixRoute: API access suspended for an unpaid invoice',
    'account.reinstated': 'MixRoute: API access reinstated',
    'subprocessor.announced': `MixRoute: new sub-processor ${String(d.recipient)}, effective ${String(d.effectiveAt)}`,
    'account.details_changed': `MixRoute: billing details changed (${String(d.fields)})`,
  };
  const lines = [`Event: ${e.type}`, `Event id: ${e.id}`, `Account: ${e.accountId}`];
  for (const [k, v] of Object.entries(e.data)) {
    if (k === 'links' || k === 'accountId' || v === null || v === undefined || typeof v === 'object') continue;
    lines.push(`${k}: ${String(v)}`);
  }
  const links = (e.data.links ?? {}) as Record<string, string>;
  if (Object.keys(links).length > 0) {
    lines.push('', 'See (MixRoute API, with a management key):');
    for (const [name, path] of Object.entries(links)) lines.push(`  ${name}: GET ${path}`);
  }
  lines.push('', 'You receive this because alert emails are on for this account; staff or a management key can turn them off.');
  return { subject: subjects[e.type], body: lines.join('\n') };
}

/**
 * Collection events are emailed to the billing address even when alert
 * emails are off: they are the reminders of a debt and the notice of a
 * suspension, not alerts the account chose to receive. A sub-processor
 * notice likewise: the data-processing agreement promises it.
 */
export const ALWAYS_EMAILED: ReadonlySet<AccountEventType> = new Set(['invoice.payment_due', 'invoice.overdue', 'account.suspended', 'account.reinstated', 'subprocessor.announced', 'account.details_changed']);

/** An outbox message's key for an event's email (notification_outbox.idempotency_key). */
export const eventEmailKey = (eventId: string) => `account-event:${eventId}`;

/**
 * Low-balance thresholds as set by staff or a management key: positive
 * amounts, at most MAX_LOW_BALANCE_THRESHOLDS, duplicates dropped, highest
 * first. Throws a message fit for the caller's error format.
 */
export function normalizeThresholds(values: readonly string[]): string[] {
  const seen = new Map<string, Decimal>();
  for (const v of values) {
    const d = new Money(v);
    seen.set(toAmountString(d), d);
  }
  if (seen.size > MAX_LOW_BALANCE_THRESHOLDS) throw new Error(`at most ${MAX_LOW_BALANCE_THRESHOLDS} low-balance thresholds`);
  return [...seen.values()].sort((a, b) => b.comparedTo(a)).map((d) => toAmountString(d));
}
