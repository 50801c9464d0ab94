import { createHash } from 'node:crypto';
import type Decimal from 'decimal.js';
import { Money, toAmountString } from '../billing/money';
import type { Db } from './knex';
import { lockBalances, postEntries } from './ledger';
import { boundarySql } from './uninvoiced';

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
  input_tokens: number;
  cache_read_tokens: number;
  cache_write_tokens: number;
  output_tokens: number;
  reasoning_tokens: number;
  cost: string;
}

/**
 * Settles an account's unsettled usage in one transaction: folds the events
 * into usage_hourly (into late rows for hours already invoiced), posts one `usage` ledger entry for their total with an
 * idempotency key derived from the batch, releases the part of each balance
 * hold that the usage consumed, and marks the events settled. The account's
 * balance row is locked first, so a retried or duplicated run waits, then
 * finds nothing left to settle and changes nothing.
 */
export async function settleAccountUsage(
  db: Db,
  accountId: string,
  opts: { limit: number; overdraftAllowance: Decimal; before?: Date; actor?: string; reason?: string },
): Promise<SettlementResult> {
  return db.transaction(async (trx) => {
    const locked = await lockBalances(trx, [accountId]);
    const q = trx('usage_events')
      .where('account_id', accountId)
      .whereNull('settled_at')
      .orderBy([{ column: 'occurred_at' }, { column: 'request_id' }])
      .limit(opts.limit)
      .select(trx.raw(`occurred_at::text AS occurred_at_exact`), 'request_id', 'occurred_at', 'model', 'provider', 'price_id', 'hold_id', 'input_tokens', 'cache_read_tokens', 'cache_write_tokens', 'output_tokens', 'reasoning_tokens', 'cost');
    if (opts.before) q.where('occurred_at', '<', opts.before);
    const events: EventRow[] = await q;
    if (events.length === 0) return { events: 0, cost: '0', settlementKey: null, more: false };

    const key = `usage:${accountId}:${createHash('sha256')
      .update(events.map((e) => `${e.request_id}@${e.occurred_at_exact}`).join('\n'))
      .digest('hex')
      .slice(0, 32)}`;

    // usage_hourly: one row per account, hour, model, provider and price version.
    const groups = new Map<string, { hour: Date; model: string; provider: string; priceId: string; requests: number; t: number[]; cost: Decimal }>();
    let total = new Money(0);
    const byHold = new Map<string, Decimal>();
    for (const e of events) {
      const hour = new Date(Math.floor(e.occurred_at.getTime() / 3_600_000) * 3_600_000);
      const g = `${hour.toISOString()}|${e.model ?? ''}|${e.provider ?? ''}|${e.price_id ?? ''}`;
      const agg = groups.get(g) ?? { hour, model: e.model ?? '', provider: e.provider ?? '', priceId: e.price_id ?? '', requests: 0, t: [0, 0, 0, 0, 0], cost: new Money(0) };
      agg.requests += 1;
      agg.t = [agg.t[0]! + e.input_tokens, agg.t[1]! + e.cache_read_tokens, agg.t[2]! + e.cache_write_tokens, agg.t[3]! + e.output_tokens, agg.t[4]! + e.reasoning_tokens];
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
      `INSERT INTO usage_hourly AS u (account_id, hour, model, provider, price_id, requests, input_tokens, cache_read_tokens, cache_write_tokens, output_tokens, reasoning_tokens, cost, late)
       SELECT ?::uuid, g.*, g.hour < ${boundarySql('?::uuid')}
         FROM unnest(?::timestamptz[], ?::text[], ?::text[], ?::text[], ?::int[], ?::bigint[], ?::bigint[], ?::bigint[], ?::bigint[], ?::bigint[], ?::numeric[])
              AS g(hour, model, provider, price_id, requests, input_tokens, cache_read_tokens, cache_write_tokens, output_tokens, reasoning_tokens, cost)
       ON CONFLICT (account_id, hour, model, provider, price_id, late) WHERE invoiced_by IS NULL DO UPDATE SET
         requests = u.requests + EXCLUDED.requests,
         input_tokens = u.input_tokens + EXCLUDED.input_tokens,
         cache_read_tokens = u.cache_read_tokens + EXCLUDED.cache_read_tokens,
         cache_write_tokens = u.cache_write_tokens + EXCLUDED.cache_write_tokens,
         output_tokens = u.output_tokens + EXCLUDED.output_tokens,
         reasoning_tokens = u.reasoning_tokens + EXCLUDED.reasoning_tokens,
         cost = u.cost + EXCLUDED.cost`,
      [
        accountId,
        accountId,
        groupRows.map((g) => g.hour.toISOString()),
        groupRows.map((g) => g.model),
        groupRows.map((g) => g.provider),
        groupRows.map((g) => g.priceId),
        groupRows.map((g) => g.requests),
        ...[0, 1, 2, 3, 4].map((i) => groupRows.map((g) => g.t[i]!)),
        groupRows.map((g) => toAmountString(g.cost)),
      ],
    );

    if (total.gt(0)) {
      await postEntries(
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
      throw new Error(`settlement marked ${marked.rowCount} of ${events.length} events; rolled back`);
    }
    return { events: events.length, cost: toAmountString(total), settlementKey: key, more: events.length === opts.limit };
  });
}
