import type { Db } from '../../db/knex';
import type { Discrepancy, ReconcileWindow } from '../reconciliation.rules';
import { money } from './amounts.rules';

// The queries of the `usage` check (usageVsLedger.service.ts runs them and makes its repairs).

export interface OverdueUsageRow {
  account_id: string;
  events: number;
  cost: string;
}

/** a. Per account, the window's usage events before the cutoff that no settlement picked up. */
export async function overdueUsage(db: Db, window: ReconcileWindow, cutoff: Date): Promise<OverdueUsageRow[]> {
  return (
    await db.raw(
      `SELECT account_id, count(*)::int AS events, sum(cost)::text AS cost
         FROM usage_events
        WHERE occurred_at >= ? AND occurred_at < ? AND settled_at IS NULL
        GROUP BY account_id ORDER BY account_id`,
      [window.start, cutoff.toISOString()],
    )
  ).rows;
}

/**
 * b. Settled batches of the window whose ledger entry is missing or differs. The window may hold part
 * of a batch that straddles its edge, so these are candidates, for `settledBatches` to confirm.
 */
export async function deductionCandidates(db: Db, window: ReconcileWindow): Promise<{ account_id: string; settlement_key: string }[]> {
  return (
    await db.raw(
      `WITH w AS (
         -- By key alone (a key names one account): the planner then estimates the groups
         -- right and hashes them in memory instead of sorting ten million rows on disk.
         SELECT min(account_id::text)::uuid AS account_id, settlement_key, sum(cost) AS cost
           FROM usage_events
          WHERE occurred_at >= ? AND occurred_at < ? AND settled_at IS NOT NULL
          GROUP BY settlement_key)
       SELECT w.account_id, w.settlement_key
         FROM w LEFT JOIN ledger_entries le ON le.idempotency_key = w.settlement_key
        WHERE (le.id IS NULL AND w.cost > 0) OR (le.id IS NOT NULL AND (le.amount <> -w.cost OR le.account_id <> w.account_id))`,
      [window.start, window.end],
    )
  ).rows as { account_id: string; settlement_key: string }[];
}

export interface SettledBatchRow {
  account_id: string;
  settlement_key: string;
  events: number;
  cost: string;
  entry_id: string | number | null;
  entry_amount: string | null;
  entry_account: string | null;
}

/** b. The whole batches of the candidates (a few rows, by account), each with its ledger entry if any. */
export async function settledBatches(db: Db, candidates: { account_id: string; settlement_key: string }[]): Promise<SettledBatchRow[]> {
  return (
    await db.raw(
      `SELECT e.account_id, e.settlement_key, count(*)::int AS events, sum(e.cost)::text AS cost,
              le.id AS entry_id, le.amount::text AS entry_amount, le.account_id AS entry_account
         FROM usage_events e LEFT JOIN ledger_entries le ON le.idempotency_key = e.settlement_key
        WHERE e.account_id = ANY(?::uuid[]) AND e.settlement_key = ANY(?::text[])
        GROUP BY e.account_id, e.settlement_key, le.id
        ORDER BY e.account_id, e.settlement_key`,
      [[...new Set(candidates.map((c) => c.account_id))], candidates.map((c) => c.settlement_key)],
    )
  ).rows;
}

/**
 * c. Deductions posted in the window whose batch has no events. Settlement
 * posts an entry minutes after its events, so events are looked for from a
 * day before the window (every extra day is another full partition in the
 * anti-join); the few left, late batches included, are confirmed without bounds.
 */
export async function deductionsWithoutEvents(db: Db, window: ReconcileWindow): Promise<Discrepancy[]> {
  const out: Discrepancy[] = [];
  const lookback = new Date(new Date(window.start).getTime() - 86_400_000).toISOString();
  const orphanCandidates = (
    await db.raw(
      `SELECT le.id, le.account_id, le.idempotency_key, le.amount::text AS amount
         FROM ledger_entries le
        WHERE le.kind = 'usage' AND le.reference_type = 'usage_batch' AND le.created_at >= ? AND le.created_at < ?
          AND NOT EXISTS (SELECT 1 FROM usage_events e WHERE e.settlement_key = le.idempotency_key AND e.occurred_at >= ? AND e.occurred_at < ?)`,
      [window.start, window.end, lookback, window.end],
    )
  ).rows;
  for (const e of orphanCandidates) {
    const found = await db('usage_events').where({ account_id: e.account_id, settlement_key: e.idempotency_key }).first(db.raw('1 AS one'));
    if (found) continue;
    out.push({
      kind: 'usage_deduction_without_events',
      subject: e.idempotency_key,
      accountId: e.account_id,
      expected: '0',
      actual: money(e.amount),
      unit: 'USD',
      details: { ledgerEntryId: String(e.id) },
      resolution: 'needs_attention',
      repairRef: null,
    });
  }
  return out;
}

/**
 * d. Per account: settled events of the window against usage_hourly's hours
 * of the window (one statement, one snapshot: settlement writes both at once).
 */
export async function usageHourlyMismatches(db: Db, window: ReconcileWindow): Promise<Discrepancy[]> {
  const out: Discrepancy[] = [];
  const hourly = (
    await db.raw(
      `WITH ev AS (
         SELECT account_id, count(*) AS requests, sum(cost) AS cost,
                sum(input_tokens + cache_read_tokens + cache_write_tokens) AS input_tokens, sum(output_tokens) AS output_tokens
           FROM usage_events
          WHERE occurred_at >= ? AND occurred_at < ? AND settled_at IS NOT NULL
          GROUP BY account_id),
       hr AS (
         SELECT account_id, sum(requests) AS requests, sum(cost) AS cost,
                sum(input_tokens + cache_read_tokens + cache_write_tokens) AS input_tokens, sum(output_tokens) AS output_tokens
           FROM usage_hourly
          WHERE hour >= ? AND hour < ?
          GROUP BY account_id)
       SELECT COALESCE(ev.account_id, hr.account_id) AS account_id,
              COALESCE(ev.requests, 0)::text AS ev_requests, COALESCE(ev.cost, 0)::text AS ev_cost,
              COALESCE(ev.input_tokens, 0)::text AS ev_input, COALESCE(ev.output_tokens, 0)::text AS ev_output,
              COALESCE(hr.requests, 0)::text AS hr_requests, COALESCE(hr.cost, 0)::text AS hr_cost,
              COALESCE(hr.input_tokens, 0)::text AS hr_input, COALESCE(hr.output_tokens, 0)::text AS hr_output
         FROM ev FULL JOIN hr ON hr.account_id = ev.account_id
        WHERE COALESCE(ev.requests, 0) <> COALESCE(hr.requests, 0) OR COALESCE(ev.cost, 0) <> COALESCE(hr.cost, 0)
           OR COALESCE(ev.input_tokens, 0) <> COALESCE(hr.input_tokens, 0) OR COALESCE(ev.output_tokens, 0) <> COALESCE(hr.output_tokens, 0)`,
      [window.start, window.end, window.start, window.end],
    )
  ).rows;
  for (const h of hourly) {
    out.push({
      kind: 'usage_hourly_mismatch',
      subject: `${h.account_id}:${window.label}`,
      accountId: h.account_id,
      expected: money(h.ev_cost),
      actual: money(h.hr_cost),
      unit: 'USD',
      details: {
        events: { requests: Number(h.ev_requests), inputTokens: Number(h.ev_input), outputTokens: Number(h.ev_output) },
        usageHourly: { requests: Number(h.hr_requests), inputTokens: Number(h.hr_input), outputTokens: Number(h.hr_output) },
      },
      resolution: 'needs_attention',
      repairRef: null,
    });
  }
  return out;
}
