import { createHash } from 'node:crypto';
import type Decimal from 'decimal.js';
import { Money, toAmountString } from '../shared/money.rules';
import { ConflictError } from '../errors';
import type { DbOrTrx, Trx } from '../db/knex';
import { lockBalances, postEntries } from '../ledger/ledger.data';
import { boundarySql } from './uninvoiced.data';
import { isAccountId, shardSql } from './shards.rules';
import { sqlState } from './dataErrors.rules';
import { alertTargetJsonSql, recordSettlementEvents, type AlertTarget } from '../notifications/events.data';
import { windowBounds } from '../accounts/keyWindow.rules';

/** The counters of a usage_hourly row, and of a usage_daily_keys row; settlement adds a batch's to them. */
const HOURLY_COUNTERS = ['requests', 'input_tokens', 'cache_read_tokens', 'cache_write_tokens', 'cache_write_1h_tokens', 'output_tokens', 'reasoning_tokens', 'cost'];
const DAILY_KEY_COUNTERS = ['requests', 'input_tokens', 'cache_read_tokens', 'cache_write_tokens', 'output_tokens', 'reasoning_tokens', 'cost'];

/** An ON CONFLICT ... DO UPDATE SET list that adds the incoming row's counters to the stored row (alias). */
const addCounters = (alias: string, columns: readonly string[]): string => columns.map((c) => `${c} = ${alias}.${c} + EXCLUDED.${c}`).join(', ');

/**
 * Settlement's statements: each function here runs inside the caller's
 * transaction; src/metering/metering.service.ts opens it and decides what to
 * do when a pass fails.
 */

/** A settlement's own check found its writes inconsistent and rolled it back: a data error, like SQLSTATE 22 or 23. */
export class SettlementConsistencyError extends Error {
  override readonly name = 'SettlementConsistencyError';
}

/**
 * Why a settlement failed, when it failed because of what some account's
 * usage holds (retrying the same data cannot succeed): the SQLSTATE of a data
 * exception (class 22) or integrity violation (class 23), `consistency` for a
 * settlement's own consistency check, `conflict` for an idempotency key used
 * for another entry. Undefined for anything else (a lost connection, a
 * timeout): those are retried.
 */
export function settlementDataErrorCode(err: unknown): string | undefined {
  const code = sqlState(err);
  if (code !== undefined) return code.startsWith('22') || code.startsWith('23') ? code : undefined;
  if (err instanceof SettlementConsistencyError) return 'consistency';
  if (err instanceof ConflictError) return 'conflict';
  return undefined;
}

export interface SettlementResult {
  events: number;
  cost: string;
  /** The batch's idempotency key (also the ledger entry's), or null when there was nothing to settle. */
  settlementKey: string | null;
  /** True when the batch hit the limit and more unsettled events may be waiting. */
  more: boolean;
}

interface EventRow {
  request_id: string;
  occurred_at: Date;
  /** PostgreSQL's own text of occurred_at: exact to the microsecond, unlike a JS Date. */
  occurred_at_exact: string;
  model: string | null;
  provider: string | null;
  price_id: string | null;
  hold_id: string | null;
  // bigint columns: numbers while exact (src/db/knex.ts); summed as BigInt below so a sum never rounds.
  input_tokens: number;
  cache_read_tokens: number;
  cache_write_tokens: number;
  /** The one-hour part of cache_write_tokens (priced apart). */
  cache_write_1h_tokens: number;
  output_tokens: number;
  reasoning_tokens: number;
  cost: string;
}

export interface AccountSettlementOptions {
  limit: number;
  overdraftAllowance: Decimal;
  before?: Date;
  actor?: string;
  reason?: string;
}

/**
 * Settles a batch of an account's unsettled usage in the caller's transaction
 * (settleAccountUsage in metering.service.ts): folds the events
 * into usage_hourly (into late rows for hours already invoiced), posts one `usage` ledger entry for their total with an
 * idempotency key derived from the batch, releases the part of each balance
 * hold that the usage consumed, and marks the events settled. The account's
 * balance row is locked first, so a retried or duplicated run waits, then
 * finds nothing left to settle and changes nothing.
 */
export async function settleAccountBatch(trx: Trx, accountId: string, opts: AccountSettlementOptions): Promise<SettlementResult> {
  const locked = await lockBalances(trx, [accountId]);
  const q = trx('usage_events')
    .where('account_id', accountId)
    .whereNull('settled_at')
    .orderBy([{ column: 'occurred_at' }, { column: 'request_id' }])
    .limit(opts.limit)
    .select(trx.raw(`occurred_at::text AS occurred_at_exact`), 'request_id', 'occurred_at', 'model', 'provider', 'price_id', 'hold_id', 'input_tokens', 'cache_read_tokens', 'cache_write_tokens', 'cache_write_1h_tokens', 'output_tokens', 'reasoning_tokens', 'cost');
  if (opts.before) q.where('occurred_at', '<', opts.before);
  const events: EventRow[] = await q;
  if (events.length === 0) return { events: 0, cost: '0', settlementKey: null, more: false };

  const key = `usage:${accountId}:${createHash('sha256')
    .update(events.map((e) => `${e.request_id}@${e.occurred_at_exact}`).join('\n'))
    .digest('hex')
    .slice(0, 32)}`;

  // usage_hourly: one row per account, hour, model, provider and price version.
  const groups = new Map<string, { hour: Date; model: string; provider: string; priceId: string; requests: number; t: bigint[]; cost: Decimal }>();
  let total = new Money(0);
  const byHold = new Map<string, Decimal>();
  for (const e of events) {
    const hour = new Date(Math.floor(e.occurred_at.getTime() / 3_600_000) * 3_600_000);
    const g = `${hour.toISOString()}|${e.model ?? ''}|${e.provider ?? ''}|${e.price_id ?? ''}`;
    const agg = groups.get(g) ?? { hour, model: e.model ?? '', provider: e.provider ?? '', priceId: e.price_id ?? '', requests: 0, t: [0n, 0n, 0n, 0n, 0n, 0n], cost: new Money(0) };
    agg.requests += 1;
    const counts = [e.input_tokens, e.cache_read_tokens, e.cache_write_tokens, e.cache_write_1h_tokens, e.output_tokens, e.reasoning_tokens];
    agg.t = agg.t.map((sum, i) => sum + BigInt(counts[i]!));
    agg.cost = agg.cost.plus(e.cost);
    groups.set(g, agg);
    total = total.plus(e.cost);
    if (e.hold_id) byHold.set(e.hold_id, (byHold.get(e.hold_id) ?? new Money(0)).plus(e.cost));
  }
  // One statement for all groups: settlement runs hundreds of times a second at load. Usage of an hour
  // the account was already invoiced for goes to a late row, for the next invoice; the boundary is read
  // once per statement, and under the balance lock that invoice finalization takes too, so it cannot
  // move between this read and the commit.
  const groupRows = [...groups.values()];
  await trx.raw(
    `INSERT INTO usage_hourly AS u (account_id, hour, model, provider, price_id, requests, input_tokens, cache_read_tokens, cache_write_tokens, cache_write_1h_tokens, output_tokens, reasoning_tokens, cost, late)
     SELECT ?::uuid, g.*, g.hour < ${boundarySql('?::uuid')}
       FROM unnest(?::timestamptz[], ?::text[], ?::text[], ?::text[], ?::int[], ?::bigint[], ?::bigint[], ?::bigint[], ?::bigint[], ?::bigint[], ?::bigint[], ?::numeric[])
            AS g(hour, model, provider, price_id, requests, input_tokens, cache_read_tokens, cache_write_tokens, cache_write_1h_tokens, output_tokens, reasoning_tokens, cost)
     ON CONFLICT (account_id, hour, model, provider, price_id, late) WHERE invoiced_by IS NULL DO UPDATE SET ${addCounters('u', HOURLY_COUNTERS)}`,
    [
      accountId,
      accountId,
      groupRows.map((g) => g.hour.toISOString()),
      groupRows.map((g) => g.model),
      groupRows.map((g) => g.provider),
      groupRows.map((g) => g.priceId),
      groupRows.map((g) => g.requests),
      ...[0, 1, 2, 3, 4, 5].map((i) => groupRows.map((g) => g.t[i]!.toString())),
      groupRows.map((g) => toAmountString(g.cost)),
    ],
  );
  // usage_daily_keys: the same events per key, UTC day and model (the client API's spend and activity).
  // Read back under the balance lock, before they are marked; a key that is not the account's (never
  // from the gateway) gets no row rather than another account's attribution.
  await trx.raw(
    `INSERT INTO usage_daily_keys AS d (account_id, day, api_key_id, model, requests, input_tokens, cache_read_tokens, cache_write_tokens, output_tokens, reasoning_tokens, cost)
     SELECT e.account_id, (e.occurred_at AT TIME ZONE 'UTC')::date, e.api_key_id, COALESCE(e.model, ''), count(*), sum(e.input_tokens), sum(e.cache_read_tokens),
            sum(e.cache_write_tokens), sum(e.output_tokens), sum(e.reasoning_tokens), sum(e.cost)
       FROM usage_events e JOIN api_keys k ON k.id = e.api_key_id AND k.account_id = e.account_id
      WHERE e.account_id = ? AND e.settled_at IS NULL
        AND (e.request_id, e.occurred_at) IN (SELECT * FROM unnest(?::text[], ?::timestamptz[]))
      GROUP BY 1, 2, 3, 4
     ON CONFLICT (api_key_id, day, model) DO UPDATE SET ${addCounters('d', DAILY_KEY_COUNTERS)}`,
    [accountId, events.map((e) => e.request_id), events.map((e) => e.occurred_at_exact)],
  );

  let posted: Awaited<ReturnType<typeof postEntries>> = [];
  if (total.gt(0)) {
    posted = await postEntries(
      trx,
      [
        {
          accountId,
          kind: 'usage',
          contra: 'revenue',
          amount: total.neg(),
          idempotencyKey: key,
          referenceType: 'usage_batch',
          referenceId: key,
          actor: opts.actor ?? 'system:metering',
          reason: opts.reason ?? null,
        },
      ],
      { overdraftAllowance: opts.overdraftAllowance, locked },
    );
  }

  // The settled usage no longer needs its reservation: each hold gives up what
  // its usage cost (never more than it still holds), and the account's held
  // total falls by the sum, in one statement (holds locked in id order).
  if (byHold.size > 0) {
    const holds = [...byHold].sort(([a], [b]) => a.localeCompare(b));
    await trx.raw(
      `WITH used AS (SELECT * FROM unnest(?::uuid[], ?::numeric[]) AS u(id, cost)),
            cut AS (SELECT h.id, LEAST(used.cost, h.amount - h.settled) AS reduce
                      FROM balance_holds h JOIN used ON used.id = h.id
                     WHERE h.amount > h.settled
                     ORDER BY h.id
                       FOR UPDATE OF h),
            released AS (UPDATE balance_holds h SET settled = h.settled + cut.reduce
                           FROM cut WHERE h.id = cut.id AND cut.reduce > 0
                         RETURNING cut.reduce)
       UPDATE account_balances
          SET held = held - (SELECT sum(reduce) FROM released), updated_at = now()
        WHERE account_id = ? AND EXISTS (SELECT 1 FROM released)`,
      [holds.map(([id]) => id), holds.map(([, cost]) => toAmountString(cost)), accountId],
    );
  }

  const marked = await trx.raw(
    `UPDATE usage_events SET settled_at = clock_timestamp(), settlement_key = ?
      WHERE account_id = ? AND settled_at IS NULL
        AND (request_id, occurred_at) IN (SELECT * FROM unnest(?::text[], ?::timestamptz[]))`,
    [key, accountId, events.map((e) => e.request_id), events.map((e) => e.occurred_at_exact)],
  );
  // Every selected event must be marked in this transaction, or the batch is not settled at all.
  if (marked.rowCount !== events.length) {
    throw new SettlementConsistencyError(`settlement marked ${marked.rowCount} of ${events.length} events; rolled back`);
  }
  // Account events (balance and key-limit crossings) of what was posted: src/notifications/events.data.ts.
  await recordSettlementEvents(
    trx,
    posted.filter((p) => p.applied).map((p) => ({ accountId, entryKey: p.entry.idempotency_key, entryId: p.entry.id, amount: new Money(p.entry.amount), balanceAfter: new Money(p.entry.balance_after) })),
    { at: new Date(), windowOf: windowBounds },
  );
  return { events: events.length, cost: toAmountString(total), settlementKey: key, more: events.length === opts.limit };
}

interface PostedEntryJson {
  id: number;
  accountId: string;
  key: string;
  amount: string;
  after: string;
  target: AlertTarget | null;
}

export interface ShardSettlementResult {
  events: number;
  /** Accounts that got a ledger entry (or only usage_hourly, for zero-cost usage) in this pass. */
  accounts: number;
  cost: string;
  /** True when the pass hit its limit and more unsettled events may be waiting. */
  more: boolean;
  /** Accounts left unsettled by a data error (set only when the pass fell back to one account at a time). */
  failedAccounts?: number;
}

/**
 * Settles many accounts' unsettled usage in the caller's transaction
 * (settleShardUsage in metering.service.ts), in a fixed
 * number of statements whatever the number of accounts: lock the accounts'
 * balance rows in account-id order (so a concurrent top-up, refund or
 * per-account settlement waits instead of deadlocking), then one statement
 * that takes up to `limit` of their unsettled events, marks them settled,
 * folds them into usage_hourly (late rows for invoiced hours), posts one
 * `usage` entry per account keyed by a hash of that account's events (the
 * same key settleAccountUsage would give them), releases what the usage
 * consumed of its holds and moves the balances.
 *
 * `named` names the accounts to settle (the wake-up's hint, account ids
 * only); without it, the pass sweeps every account of `shard` that has
 * unsettled usage. A re-run after a commit finds the events settled and
 * changes nothing; a re-run after a crash before the commit does the whole
 * pass again.
 */
export async function settleShardBatch(
  trx: Trx,
  input: { shard: number; shards: number; named: string[] | undefined; limit: number; actor?: string },
): Promise<ShardSettlementResult> {
  const none: ShardSettlementResult = { events: 0, accounts: 0, cost: '0', more: false };
  const named = input.named;
  // 1. The accounts, locked. A sweep finds them from the shard's first `limit` unsettled events (in the
  // partial index's order); a hint names them and only those with unsettled usage are locked. Accounts
  // without a balance row get one (created rows are this transaction's, so locked too).
  const scan = named
    ? `scan AS (SELECT a.id AS account_id FROM accounts a
                 WHERE a.id = ANY(?::uuid[])
                   AND EXISTS (SELECT 1 FROM usage_events e WHERE e.account_id = a.id AND e.settled_at IS NULL))`
    : `scan AS (SELECT e.account_id FROM usage_events e
                 WHERE e.settled_at IS NULL AND ${shardSql('e.account_id')} = ?::int
                   AND EXISTS (SELECT 1 FROM accounts a WHERE a.id = e.account_id)
                 ORDER BY e.account_id
                 LIMIT ?)`;
  const { rows: locked } = (await trx.raw(
    `WITH ${scan},
          acc AS (SELECT DISTINCT account_id FROM scan),
          created AS (INSERT INTO account_balances (account_id) SELECT account_id FROM acc ORDER BY account_id
                      ON CONFLICT DO NOTHING RETURNING account_id),
          locked AS (SELECT b.account_id FROM account_balances b
                      WHERE b.account_id IN (SELECT account_id FROM acc)
                      ORDER BY b.account_id
                        FOR UPDATE OF b)
     SELECT x.account_id::text, (SELECT count(*) FROM scan)::int AS scanned
       FROM (SELECT account_id FROM locked UNION SELECT account_id FROM created) x`,
    named ? [named] : [input.shards, input.shard, input.limit],
  )) as { rows: { account_id: string; scanned: number }[] };
  if (locked.length === 0) return none;

  // 2. Everything else in one statement, under those locks (its snapshot is taken after them, so it sees
  // whatever another settler committed before letting go). The CTEs see one snapshot and each other's
  // RETURNING only, so every row is written once: events marked, usage_hourly upserted, entries
  // inserted, holds released, balances moved once each.
  const { rows } = await trx.raw(
    `WITH ev AS (
       SELECT e.request_id, e.occurred_at, e.account_id
         FROM usage_events e
        WHERE e.account_id = ANY(?::uuid[]) AND e.settled_at IS NULL
        ORDER BY e.account_id, e.occurred_at, e.request_id
        LIMIT ?),
     -- Materialized, and joined to the events once: inlined, the planner re-ran the aggregate (and its
     -- hashing) for every event it marked.
     batch AS MATERIALIZED (
       SELECT account_id,
              'usage:' || account_id || ':' ||
                left(encode(sha256(convert_to(string_agg(request_id || '@' || occurred_at::text, E'\\n' ORDER BY occurred_at, request_id), 'UTF8')), 'hex'), 32) AS key
         FROM ev GROUP BY account_id),
     keyed AS MATERIALIZED (
       SELECT ev.request_id, ev.occurred_at, ev.account_id, b.key FROM ev JOIN batch b ON b.account_id = ev.account_id),
     marked AS (
       UPDATE usage_events u SET settled_at = clock_timestamp(), settlement_key = k.key
         FROM keyed k
        WHERE u.account_id = k.account_id AND u.request_id = k.request_id AND u.occurred_at = k.occurred_at
          AND u.settled_at IS NULL
       RETURNING u.account_id, u.occurred_at, u.model, u.provider, u.price_id, u.hold_id, u.cost, k.key,
                 u.input_tokens, u.cache_read_tokens, u.cache_write_tokens, u.cache_write_1h_tokens, u.output_tokens, u.reasoning_tokens, u.api_key_id),
     per_account AS (
       SELECT account_id, key, sum(cost) AS cost, count(*) AS events FROM marked GROUP BY account_id, key),
     hourly AS (
       INSERT INTO usage_hourly AS h (account_id, hour, model, provider, price_id, requests, input_tokens, cache_read_tokens,
                                      cache_write_tokens, cache_write_1h_tokens, output_tokens, reasoning_tokens, cost, late)
       SELECT m.account_id, date_trunc('hour', m.occurred_at, 'UTC') AS hour, COALESCE(m.model, ''), COALESCE(m.provider, ''),
              COALESCE(m.price_id::text, ''), count(*), sum(m.input_tokens), sum(m.cache_read_tokens), sum(m.cache_write_tokens), sum(m.cache_write_1h_tokens),
              sum(m.output_tokens), sum(m.reasoning_tokens), sum(m.cost),
              -- Usage of an hour already invoiced goes to a late row, for the next invoice (see uninvoiced.data.ts).
              date_trunc('hour', m.occurred_at, 'UTC') < COALESCE(bd.invoiced_until, '-infinity'::timestamptz)
         FROM marked m LEFT JOIN usage_invoiced_boundaries bd ON bd.account_id = m.account_id
        GROUP BY m.account_id, 2, 3, 4, 5, bd.invoiced_until
       ON CONFLICT (account_id, hour, model, provider, price_id, late) WHERE invoiced_by IS NULL DO UPDATE SET ${addCounters('h', HOURLY_COUNTERS)}
       RETURNING 1),
     -- The same events per key, UTC day and model (the client API's spend and activity); a key that is not
     -- the account's (never from the gateway) gets no row rather than another account's attribution.
     daily AS (
       INSERT INTO usage_daily_keys AS d (account_id, day, api_key_id, model, requests, input_tokens, cache_read_tokens,
                                          cache_write_tokens, output_tokens, reasoning_tokens, cost)
       SELECT m.account_id, (m.occurred_at AT TIME ZONE 'UTC')::date, m.api_key_id, COALESCE(m.model, ''), count(*), sum(m.input_tokens),
              sum(m.cache_read_tokens), sum(m.cache_write_tokens), sum(m.output_tokens), sum(m.reasoning_tokens), sum(m.cost)
         FROM marked m JOIN api_keys k ON k.id = m.api_key_id AND k.account_id = m.account_id
        GROUP BY 1, 2, 3, 4
       ON CONFLICT (api_key_id, day, model) DO UPDATE SET ${addCounters('d', DAILY_KEY_COUNTERS)}
       RETURNING 1),
     entries AS (
       INSERT INTO ledger_entries (account_id, kind, contra, amount, idempotency_key, reference_type, reference_id, actor, balance_after)
       SELECT p.account_id, 'usage', 'revenue', -p.cost, p.key, 'usage_batch', p.key, ?, ab.balance - p.cost
         FROM per_account p JOIN account_balances ab ON ab.account_id = p.account_id
        WHERE p.cost > 0
        ORDER BY p.account_id
       ON CONFLICT (idempotency_key) DO NOTHING
       RETURNING id, account_id, amount, idempotency_key, balance_after),
     used AS (
       SELECT hold_id AS id, sum(cost) AS cost FROM marked WHERE hold_id IS NOT NULL GROUP BY hold_id),
     -- Each hold gives up what its usage cost, never more than it still holds (holds locked in id order,
     -- after the balances, as everywhere else).
     cut AS (
       SELECT h.id, h.account_id, LEAST(used.cost, h.amount - h.settled) AS reduce
         FROM balance_holds h JOIN used ON used.id = h.id
        WHERE h.amount > h.settled
        ORDER BY h.id
          FOR UPDATE OF h),
     released AS (
       UPDATE balance_holds h SET settled = h.settled + cut.reduce
         FROM cut WHERE h.id = cut.id AND cut.reduce > 0
       RETURNING cut.account_id, cut.reduce),
     moved AS (
       SELECT account_id, sum(debit) AS debit, sum(release) AS release
         FROM (SELECT account_id, amount AS debit, 0 AS release FROM entries
               UNION ALL SELECT account_id, 0, reduce FROM released) x
        GROUP BY account_id),
     balances AS (
       UPDATE account_balances ab SET balance = ab.balance + moved.debit, held = ab.held - moved.release, updated_at = now()
         FROM moved WHERE ab.account_id = moved.account_id
       RETURNING 1)
     SELECT (SELECT count(*) FROM ev)::int AS selected,
            (SELECT count(*) FROM marked)::int AS marked,
            (SELECT count(*) FROM per_account)::int AS accounts,
            (SELECT count(*) FROM per_account WHERE cost > 0)::int AS to_post,
            (SELECT count(*) FROM entries)::int AS posted,
            (SELECT COALESCE(sum(cost), 0) FROM per_account)::text AS cost,
            (SELECT count(*) FROM hourly)::int AS hourly,
            (SELECT count(*) FROM balances)::int AS balances,
            -- What account events need (src/notifications/events.data.ts), so that deciding them costs no statement when nothing crossed.
            (SELECT json_agg(json_build_object('id', e.id, 'accountId', e.account_id, 'key', e.idempotency_key, 'amount', e.amount::text, 'after', e.balance_after::text,
                                               'target', ${alertTargetJsonSql('e.account_id')})) FROM entries e) AS posted_entries`,
    [locked.map((l) => l.account_id), input.limit, input.actor ?? 'system:metering'],
  );
  const r = rows[0] as { selected: number; marked: number; accounts: number; to_post: number; posted: number; cost: string; posted_entries: PostedEntryJson[] | null };
  // Every selected event marked and every account's entry posted in this transaction, or nothing is.
  if (r.marked !== r.selected) throw new SettlementConsistencyError(`shard settlement marked ${r.marked} of ${r.selected} events; rolled back`);
  if (r.posted !== r.to_post) throw new SettlementConsistencyError(`shard settlement posted ${r.posted} of ${r.to_post} usage entries (a key was used before); rolled back`);
  const posted = r.posted_entries ?? [];
  await recordSettlementEvents(
    trx,
    posted.map((e) => ({ accountId: e.accountId, entryKey: e.key, entryId: e.id, amount: new Money(e.amount), balanceAfter: new Money(e.after) })),
    { at: new Date(), windowOf: windowBounds },
    new Map(posted.flatMap((e) => (e.target ? [[e.accountId, e.target] as const] : []))),
  );
  return {
    events: r.selected,
    accounts: r.accounts,
    cost: toAmountString(new Money(r.cost)),
    // A sweep also stops short when the shard had more unsettled events than its first query looked at.
    more: r.selected === input.limit || (!named && locked[0]!.scanned === input.limit),
  };
}

/**
 * The accounts a shard pass with this input would settle, in account-id
 * order: the named ones (account ids only) with unsettled usage, or for a
 * sweep those of the shard's first `limit` unsettled events (as the pass
 * scans them). Read without locks: for settling them one at a time.
 */
export async function shardPassAccounts(db: DbOrTrx, input: { shard: number; shards: number; accounts?: readonly string[]; limit: number }): Promise<string[]> {
  const named = input.accounts?.filter(isAccountId);
  if (named && named.length === 0) return [];
  const { rows } = (await db.raw(
    named
      ? `SELECT a.id::text AS account_id FROM accounts a
          WHERE a.id = ANY(?::uuid[])
            AND EXISTS (SELECT 1 FROM usage_events e WHERE e.account_id = a.id AND e.settled_at IS NULL)
          ORDER BY a.id`
      : `SELECT DISTINCT s.account_id::text AS account_id
           FROM (SELECT e.account_id FROM usage_events e
                  WHERE e.settled_at IS NULL AND ${shardSql('e.account_id')} = ?::int
                    AND EXISTS (SELECT 1 FROM accounts a WHERE a.id = e.account_id)
                  ORDER BY e.account_id
                  LIMIT ?) s
          ORDER BY 1`,
    named ? [named] : [input.shards, input.shard, input.limit],
  )) as { rows: { account_id: string }[] };
  return rows.map((r) => r.account_id);
}
