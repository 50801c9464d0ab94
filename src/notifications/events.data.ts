import { markOutboxEmailSent } from '../notify/outbox.data';
import type Decimal from 'decimal.js';
import { Money, toAmountString } from '../shared/money.rules';
import type { Db, DbOrTrx, Trx } from '../db/knex';
import {
  EVENT_LINKS,
  alertedAmount,
  balanceCrossings,
  balanceDedupeKey,
  eventEmail,
  eventEmailKey,
  keyCrossings,
  windowFirstDayOf,
  type AccountEventType,
  type KeyLimitWindow,
  type KeyWindowFn,
  ALWAYS_EMAILED,
} from './events.rules';

/**
 * Account events' statements (issue 22). The record* functions run inside
 * the transaction that moved the money (settlement, a top-up, an invoice),
 * so an event exists exactly when its cause committed; each takes a fixed
 * number of statements whatever the number of accounts or events, and the
 * deciding is in events.rules.ts.
 */

export interface NewAccountEvent {
  accountId: string;
  type: AccountEventType;
  dedupeKey: string;
  data: Record<string, unknown>;
}

export interface AccountEventRow {
  id: string;
  account_id: string;
  type: AccountEventType;
  occurred_at: Date;
  data: Record<string, unknown>;
  dedupe_key: string;
}

/** What deciding and mailing an account's events needs to know about it. */
export interface AlertTarget {
  account_id: string;
  plan: 'prepaid' | 'postpaid';
  credit_limit: string;
  currency: string;
  billing_email: string | null;
  low_balance_thresholds: string[] | null;
  email_alerts: boolean | null;
  /** Whether any live key of the account has a spend limit (only then are key crossings looked for). */
  has_limited_keys: boolean;
}

/**
 * An AlertTarget as a JSON object, for the account whose id is the SQL
 * expression `accountIdSql`: so a statement that already runs (settlement's
 * shard pass) can return it, and deciding events costs no statement of its
 * own when nothing crossed.
 */
export function alertTargetJsonSql(accountIdSql: string): string {
  return `(SELECT json_build_object('account_id', a.id, 'plan', a.plan, 'credit_limit', a.credit_limit::text, 'currency', a.currency,
            'billing_email', a.billing_email, 'low_balance_thresholds', s.low_balance_thresholds::text[], 'email_alerts', s.email_alerts,
            'has_limited_keys', EXISTS (SELECT 1 FROM api_keys k WHERE k.account_id = a.id AND k.spend_limit IS NOT NULL AND k.revoked_at IS NULL))
       FROM accounts a LEFT JOIN account_alert_settings s ON s.account_id = a.id WHERE a.id = ${accountIdSql})`;
}

/** The accounts' AlertTargets, in one statement. */
async function alertTargets(trx: DbOrTrx, accountIds: string[]): Promise<Map<string, AlertTarget>> {
  if (accountIds.length === 0) return new Map();
  const { rows } = (await trx.raw(`SELECT ${alertTargetJsonSql('x.id')} AS t FROM unnest(?::uuid[]) AS x(id)`, [[...new Set(accountIds)]])) as {
    rows: { t: AlertTarget | null }[];
  };
  return new Map(rows.flatMap((r) => (r.t ? [[r.t.account_id, r.t] as const] : [])));
}

/**
 * Inserts the events not recorded yet (ON CONFLICT (dedupe_key) DO NOTHING)
 * and queues an email for each new one whose account has alert emails on and
 * a billing address; two statements. Returns the events inserted now.
 */
async function insertEvents(trx: Trx, events: NewAccountEvent[], targets: Map<string, AlertTarget>): Promise<AccountEventRow[]> {
  if (events.length === 0) return [];
  const { rows } = (await trx.raw(
    `INSERT INTO account_events (account_id, type, data, dedupe_key)
     SELECT * FROM unnest(?::uuid[], ?::text[], ?::jsonb[], ?::text[])
     ON CONFLICT (dedupe_key) DO NOTHING
     RETURNING id::text, account_id::text, type, occurred_at, data, dedupe_key`,
    [events.map((e) => e.accountId), events.map((e) => e.type), events.map((e) => JSON.stringify(e.data)), events.map((e) => e.dedupeKey)],
  )) as { rows: AccountEventRow[] };
  const mails = rows.flatMap((e) => {
    const t = targets.get(e.account_id);
    if (!t?.billing_email || (t.email_alerts === false && !ALWAYS_EMAILED.has(e.type))) return [];
    const m = eventEmail({ id: e.id, type: e.type, accountId: e.account_id, data: e.data });
    return [{ idempotency_key: eventEmailKey(e.id), recipient: t.billing_email, subject: m.subject, body: m.body }];
  });
  if (mails.length > 0) await trx('notification_outbox').insert(mails).onConflict('idempotency_key').ignore();
  return rows;
}

/** One ledger movement of an account's balance: the entry's idempotency key, its amount and the balance after it. */
export interface BalanceMovement {
  accountId: string;
  entryKey: string;
  entryId: number | string;
  amount: Decimal;
  balanceAfter: Decimal;
}

/**
 * The balance events of these ledger movements (balanceCrossings), recorded
 * with the movement's entry in its dedupe key. `extra` adds events of the
 * same movements (a top-up's topup.succeeded) so they share the statements;
 * `known` are targets the caller read already.
 */
export async function recordBalanceMovements(
  trx: Trx,
  movements: BalanceMovement[],
  extra: (t: AlertTarget, m: BalanceMovement) => NewAccountEvent[] = () => [],
  known?: Map<string, AlertTarget>,
): Promise<AccountEventRow[]> {
  if (movements.length === 0) return [];
  const targets = known ?? (await alertTargets(trx, movements.map((m) => m.accountId)));
  const events: NewAccountEvent[] = [];
  for (const m of movements) {
    const t = targets.get(m.accountId);
    if (!t) continue;
    const level = (balance: Decimal) => alertedAmount({ plan: t.plan, balance, creditLimit: new Money(t.credit_limit) });
    const thresholds = (t.low_balance_thresholds ?? []).map((x) => new Money(x));
    events.push(...extra(t, m));
    for (const c of balanceCrossings(level(m.balanceAfter.minus(m.amount)), level(m.balanceAfter), thresholds)) {
      events.push({
        accountId: m.accountId,
        type: c.type,
        dedupeKey: balanceDedupeKey(m.accountId, c, m.entryKey),
        data: {
          accountId: m.accountId,
          ledgerEntryId: String(m.entryId),
          threshold: c.threshold,
          balance: toAmountString(m.balanceAfter),
          currency: t.currency,
          links: { credits: EVENT_LINKS.credits },
        },
      });
    }
  }
  return insertEvents(trx, events, targets);
}

/** A top-up or grant credited: topup.succeeded (top-ups only) and whatever balance level it crossed. */
export async function recordTopUpEvents(trx: Trx, m: BalanceMovement & { kind: 'topup' | 'grant'; reference: string }): Promise<AccountEventRow[]> {
  return recordBalanceMovements(trx, [m], (t) =>
    m.kind !== 'topup'
      ? []
      : [
          {
            accountId: m.accountId,
            type: 'topup.succeeded',
            dedupeKey: `topup.succeeded:${m.entryKey}`,
            data: {
              accountId: m.accountId,
              ledgerEntryId: String(m.entryId),
              paymentReference: m.reference,
              amount: toAmountString(m.amount),
              balance: toAmountString(m.balanceAfter),
              currency: t.currency,
              links: { credits: EVENT_LINKS.credits },
            },
          },
        ],
  );
}

/** One event that is not a balance movement (an invoice, a credit note): recorded once per dedupe key. */
export async function recordAccountEvent(trx: Trx, event: NewAccountEvent): Promise<AccountEventRow[]> {
  return insertEvents(trx, [event], await alertTargets(trx, [event.accountId]));
}

/** Events that are not balance movements, for many accounts at once (a sub-processor notice): a fixed three statements. */
export async function recordAccountEvents(trx: Trx, events: NewAccountEvent[]): Promise<AccountEventRow[]> {
  return insertEvents(trx, events, await alertTargets(trx, events.map((e) => e.accountId)));
}

/**
 * The events of what a settlement posted, in its transaction: balance
 * crossings of each usage entry, and spend-limit crossings of the keys of
 * the accounts that have limited keys. With `known` targets (returned by the
 * settlement's own statement) and nothing crossed, no statement at all;
 * otherwise a fixed few, whatever the number of accounts.
 */
export async function recordSettlementEvents(
  trx: Trx,
  movements: BalanceMovement[],
  keyWindows: { at: Date; windowOf: KeyWindowFn },
  known?: Map<string, AlertTarget>,
): Promise<void> {
  if (movements.length === 0) return;
  const targets = known ?? (await alertTargets(trx, movements.map((m) => m.accountId)));
  await recordBalanceMovements(trx, movements, undefined, targets);
  const limited = [...new Set(movements.map((m) => m.accountId))].filter((id) => targets.get(id)?.has_limited_keys);
  if (limited.length > 0) await recordKeySpend(trx, limited, keyWindows);
}

interface LimitedKeyRow {
  id: string;
  account_id: string;
  spend_limit: string;
  limit_window: KeyLimitWindow;
  limit_alert_percents: number[];
}

/**
 * After settlement: the spend-limit events of these accounts' keys
 * (keyCrossings), from each key's settled spend in its window at `at` (a sum
 * of usage_daily_keys over at most a month of days, or the key's life).
 * Three statements: the accounts' live keys with a limit, their window
 * spend, the events. Called for the accounts a settlement pass touched.
 */
export async function recordKeySpend(trx: Trx, accountIds: string[], { at, windowOf }: { at: Date; windowOf: KeyWindowFn }): Promise<AccountEventRow[]> {
  if (accountIds.length === 0) return [];
  const keys = (await trx('api_keys')
    .whereIn('account_id', [...new Set(accountIds)])
    .whereNotNull('spend_limit')
    .whereNull('revoked_at')
    .whereRaw('cardinality(limit_alert_percents) > 0')
    .select('id', 'account_id', trx.raw('spend_limit::text AS spend_limit'), 'limit_window', 'limit_alert_percents')) as LimitedKeyRow[];
  if (keys.length === 0) return [];
  // A lifetime limit sums every day: PostgreSQL's '-infinity' date is before all of them.
  const windows = new Map(keys.map((k) => [k.id, windowOf(k.limit_window, at)]));
  const firstDays = keys.map((k) => windowFirstDayOf(windows.get(k.id)!.start) ?? '-infinity');
  const { rows: spend } = (await trx.raw(
    `SELECT w.key_id::text AS key_id, COALESCE(sum(u.cost), 0)::text AS spent
       FROM unnest(?::uuid[], ?::date[]) AS w(key_id, first_day)
       LEFT JOIN usage_daily_keys u ON u.api_key_id = w.key_id AND u.day >= w.first_day
      GROUP BY w.key_id`,
    [keys.map((k) => k.id), firstDays],
  )) as { rows: { key_id: string; spent: string }[] };
  const spentBy = new Map(spend.map((s) => [s.key_id, new Money(s.spent)]));
  const targets = await alertTargets(trx, keys.map((k) => k.account_id));
  const events: NewAccountEvent[] = [];
  for (const k of keys) {
    const limit = new Money(k.spend_limit);
    const spent = spentBy.get(k.id) ?? new Money(0);
    const win = windows.get(k.id)!;
    for (const c of keyCrossings({ keyId: k.id, limit, windowStart: win.start, percents: k.limit_alert_percents }, spent)) {
      events.push({
        accountId: k.account_id,
        type: c.type,
        dedupeKey: c.dedupeKey,
        data: {
          accountId: k.account_id,
          keyId: k.id,
          percent: c.percent,
          limit: toAmountString(limit),
          spent: toAmountString(spent),
          window: k.limit_window,
          windowStart: win.start?.toISOString() ?? null,
          nextReset: win.nextReset?.toISOString() ?? null,
          currency: targets.get(k.account_id)?.currency ?? null,
          links: { key: EVENT_LINKS.key(k.id), activity: EVENT_LINKS.activity },
        },
      });
    }
  }
  return insertEvents(trx, events, targets);
}

// --- settings and reading -----------------------------------------------------------------

export interface AlertSettingsRow {
  account_id: string;
  low_balance_thresholds: string[];
  email_alerts: boolean;
  updated_at: Date | null;
}

export async function accountExists(db: DbOrTrx, accountId: string): Promise<boolean> {
  return (await db('accounts').where({ id: accountId }).first('id')) !== undefined;
}

/** The account's settings; the defaults (no thresholds, email on) when it has no row. */
export async function alertSettings(db: DbOrTrx, accountId: string): Promise<AlertSettingsRow> {
  const row = (await db('account_alert_settings')
    .where({ account_id: accountId })
    .first('account_id', db.raw('low_balance_thresholds::text[] AS low_balance_thresholds'), 'email_alerts', 'updated_at')) as AlertSettingsRow | undefined;
  return row ?? { account_id: accountId, low_balance_thresholds: [], email_alerts: true, updated_at: null };
}

/** Sets the fields given, keeping the others. */
export async function upsertAlertSettings(db: DbOrTrx, accountId: string, s: { lowBalanceThresholds?: string[]; emailAlerts?: boolean }): Promise<void> {
  const insert: Record<string, unknown> = { account_id: accountId };
  const merge: string[] = [];
  if (s.lowBalanceThresholds !== undefined) {
    insert.low_balance_thresholds = db.raw('?::numeric[]', [s.lowBalanceThresholds]);
    merge.push('low_balance_thresholds');
  }
  if (s.emailAlerts !== undefined) {
    insert.email_alerts = s.emailAlerts;
    merge.push('email_alerts');
  }
  insert.updated_at = db.fn.now();
  merge.push('updated_at');
  await db('account_alert_settings').insert(insert).onConflict('account_id').merge(merge);
}

/**
 * An account's events, newest first; page with `before`, the previous page's
 * last row's (occurred_at, id). `cursor_at` is occurred_at to the microsecond
 * (a JS Date would cut it to the millisecond and skip rows on a page edge).
 */
export async function accountEventsPage(
  db: DbOrTrx,
  accountId: string,
  page: { limit: number; before?: { at: string; id: string }; types?: string[] },
): Promise<(AccountEventRow & { cursor_at: string })[]> {
  const q = db('account_events')
    .where({ account_id: accountId })
    .orderBy([{ column: 'occurred_at', order: 'desc' }, { column: 'id', order: 'desc' }])
    .limit(page.limit)
    .select('id', 'account_id', 'type', 'occurred_at', 'data', 'dedupe_key', db.raw(`to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS cursor_at`));
  if (page.before) q.whereRaw('(occurred_at, id) < (?::timestamptz, ?::uuid)', [page.before.at, page.before.id]);
  if (page.types?.length) q.whereIn('type', page.types);
  return q;
}

export interface EventEmailRow {
  id: string;
  idempotency_key: string;
  recipient: string;
  subject: string;
  body: string;
}

/** Queued event emails not sent yet, oldest first. */
export async function pendingEventEmails(db: Db, limit: number): Promise<EventEmailRow[]> {
  return db('notification_outbox')
    .whereNull('sent_at')
    .whereRaw(`idempotency_key LIKE 'account-event:%'`)
    .orderBy('id')
    .limit(limit)
    .select(db.raw('id::text AS id'), 'idempotency_key', 'recipient', 'subject', 'body');
}

/** Marks an event email sent (its body cleared, as for every outbox message). */
export const markEventEmailSent = (db: Db, id: string) => markOutboxEmailSent(db, id);
