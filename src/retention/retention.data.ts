import type { Db } from '../db/knex';
import { lockBalances } from '../ledger/ledger.data';
import { CONSUMED_THROUGH_BOUNDARY, openUsageExistsSql } from '../metering/uninvoicedSql';

/**
 * Metadata expiry, per category of retention_policies.
 *
 * Guards, everywhere: nothing of an account under an open legal hold is
 * expired; no usage event is expired before it is billed: settled, its
 * month reconciled (a finished reconciliation of that period), and no
 * uninvoiced cost of its account from before it. Row-by-row categories go in
 * bounded batches, so a killed worker resumes where it stopped; whole days of
 * usage events go by dropping their partition (after moving the rows that
 * must stay into the default partition); the detach holds its lock for
 * milliseconds (see detach) so the metering batcher's inserts barely notice.
 */

export interface Policy {
  category: string;
  period: number;
  unit: 'days' | 'years_after_year_end';
  action: 'minimise' | 'delete' | 'erase_contact';
  legal_basis: string;
}

export interface CategoryOutcome {
  category: string;
  cutoff: string;
  expiredRows: number;
  expiredPartitions: number;
  keptHold: number;
  keptUnbilled: number;
  keptOther: number;
  note: string | null;
}

export interface ExpiryContext {
  db: Db;
  now: Date;
  batchSize: number;
  onProgress?: () => void;
  /**
   * After each day partition it expires, usage expiry pauses this many times
   * as long as the day took, and after each slice of a day's count this many
   * times as long as the slice took (0: no pause). See expireUsageEvents.
   */
  pauseFactor?: number;
  /**
   * Told before each such pause, with its length and what it follows: a
   * dropped day, or a slice of a day's count (see countDay). The benchmark's
   * timeline shows them.
   */
  onPause?: (ms: number, after: 'drop' | 'count') => void;
  /** Pages per slice of a day's count (COUNT_SLICE_PAGES; tests make it small). */
  countSlicePages?: number;
}

/** The instant before which data of the category may go. Billing periods count from the end of the calendar year. */
export function cutoffFor(policy: Pick<Policy, 'period' | 'unit'>, now: Date): Date {
  if (policy.unit === 'days') return new Date(now.getTime() - policy.period * 86_400_000);
  // Kept `period` full years after the end of the year the record belongs to:
  // a record of year Y may go from 1 January of Y + period + 1.
  return new Date(Date.UTC(now.getUTCFullYear() - policy.period, 0, 1));
}

const HELD = `SELECT account_id FROM legal_holds WHERE released_at IS NULL`;

/** Usage events that must outlive their period (alias e). */
const MUST_KEEP = `(
  e.settled_at IS NULL
  OR e.account_id IN (${HELD})
  OR NOT EXISTS (SELECT 1 FROM reconciliation_reports r
                  WHERE r.scope = 'period' AND r.status = 'finished'
                    AND r.label = to_char(e.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM'))
  OR ${openUsageExistsSql('e.account_id', 'u.cost > 0 AND u.hour <= e.occurred_at')}
)`;
const KEEP_REASON = `CASE WHEN e.account_id IN (${HELD}) THEN 'hold' ELSE 'unbilled' END`;

/**
 * The same guard for one whole day whose month is known to be reconciled,
 * given the accounts to keep (held, or with uninvoiced cost from before the
 * day's end; a little more conservative than per event).
 */
const KEEP_SQL = `(e.settled_at IS NULL OR e.account_id = ANY(?::uuid[]))`;

/** A slice of a day's count: 32 MB of heap, a few milliseconds of one core. */
const COUNT_SLICE_PAGES = 4_096;

const rowCount = (r: unknown) => Number((r as { rowCount?: number })?.rowCount ?? 0);

async function deleteInBatches(ctx: ExpiryContext, table: string, idColumn: string, where: string, bindings: (string | number | Date)[]): Promise<number> {
  let total = 0;
  for (;;) {
    const r = await ctx.db.raw(`DELETE FROM ?? WHERE ?? IN (SELECT ?? FROM ?? WHERE ${where} LIMIT ?)`, [table, idColumn, idColumn, table, ...bindings, ctx.batchSize]);
    const n = rowCount(r);
    total += n;
    ctx.onProgress?.();
    if (n < ctx.batchSize) return total;
  }
}

async function monthReconciled(db: Db, month: string): Promise<boolean> {
  return !!(await db('reconciliation_reports').where({ scope: 'period', label: month, status: 'finished' }).first('id'));
}

interface PartitionRow {
  name: string;
  day: string;
  detached: boolean;
  pending: boolean;
}

/** Day partitions of usage_events, attached or left detached by an interrupted run. */
async function dayPartitions(db: Db): Promise<PartitionRow[]> {
  const { rows } = await db.raw(
    `SELECT c.relname AS name, i.inhrelid IS NULL AS detached, COALESCE(i.inhdetachpending, false) AS pending
       FROM pg_class c
       LEFT JOIN pg_inherits i ON i.inhrelid = c.oid AND i.inhparent = 'usage_events'::regclass
      WHERE c.relkind = 'r' AND c.relname ~ '^usage_events_[0-9]{8}$' AND c.relnamespace = 'public'::regnamespace
      ORDER BY c.relname`,
  );
  return rows.map((r: { name: string; detached: boolean; pending: boolean }) => ({ ...r, day: `${r.name.slice(13, 17)}-${r.name.slice(17, 19)}-${r.name.slice(19, 21)}` }));
}

/** Raw usage events: whole days by partition, then the kept rows in the default partition as they become billed. */
export async function expireUsageEvents(ctx: ExpiryContext, cutoff: Date): Promise<CategoryOutcome> {
  const { db } = ctx;
  const out: CategoryOutcome = { category: 'usage_events', cutoff: cutoff.toISOString(), expiredRows: 0, expiredPartitions: 0, keptHold: 0, keptUnbilled: 0, keptOther: 0, note: null };
  // The accounts whose usage must stay, looked up once: few, so the rows to keep are found
  // through indexes (unsettled, account and time) and a day costs one count, not three scans.
  const held: string[] = (await db.raw(HELD)).rows.map((r: { account_id: string }) => r.account_id);
  const unbilled: { account_id: string; since: Date }[] = (
    await db.raw(
      `SELECT account_id, since FROM (
         SELECT b.account_id,
                LEAST((SELECT min(u.hour) FROM usage_hourly u
                        WHERE u.account_id = b.account_id AND u.invoiced_by IS NULL AND NOT u.late AND u.hour >= b.invoiced_until AND u.cost > 0),
                      (SELECT min(u.hour) FROM usage_hourly u
                        WHERE u.account_id = b.account_id AND u.invoiced_by IS NULL AND u.late AND u.cost > 0)) AS since
           FROM usage_invoiced_boundaries b
         UNION ALL
         -- Accounts never invoiced: all their (unmarked) usage is open.
         SELECT u.account_id, min(u.hour)
           FROM usage_hourly u
          WHERE u.invoiced_by IS NULL AND u.cost > 0
            AND NOT EXISTS (SELECT 1 FROM usage_invoiced_boundaries b WHERE b.account_id = u.account_id)
          GROUP BY 1) s
        WHERE since IS NOT NULL`,
    )
  ).rows;
  const keepAccounts = (dayEnd: Date) => [...new Set([...held, ...unbilled.filter((u) => new Date(u.since) < dayEnd).map((u) => u.account_id)])];
  // A day is counted by one backend: a parallel scan of a day (hundreds of MB) takes every
  // core for its duration, and the metering batcher's inserts queue behind it.
  const count = (q: string, b: unknown[]) =>
    db.transaction(async (trx) => {
      await trx.raw(`SET LOCAL max_parallel_workers_per_gather = 0`);
      return Number((await trx.raw(q, b as never)).rows[0].n);
    });
  // All rows of a day: a scan of its whole heap (about 330 MB at a million events), in slices
  // of COUNT_SLICE_PAGES pages by TID range with the pause factor's pause after each, so the
  // scan never holds a core for long while inserts wait for one.
  const countDay = async (table: string) => {
    const pages = Number((await db.raw(`SELECT pg_relation_size(?::regclass) / current_setting('block_size')::int AS pages`, [table])).rows[0].pages);
    const slice = ctx.countSlicePages ?? COUNT_SLICE_PAGES;
    let n = 0;
    for (let from = 0; from < pages; from += slice) {
      const started = performance.now();
      n += await count(`SELECT count(*)::bigint AS n FROM ?? WHERE ctid >= ?::tid AND ctid < ?::tid`, [table, `(${from},0)`, `(${from + slice},0)`]);
      const rest = (performance.now() - started) * (ctx.pauseFactor ?? 0);
      if (rest > 0 && from + slice < pages) {
        ctx.onPause?.(rest, 'count');
        await new Promise((r) => setTimeout(r, rest));
      }
    }
    return n;
  };

  let pause = 0;
  for (const p of await dayPartitions(db)) {
    if (pause > 0) {
      ctx.onPause?.(pause, 'drop');
      await new Promise((r) => setTimeout(r, pause));
    }
    pause = 0;
    const dayStarted = performance.now();
    const dayEnd = new Date(new Date(`${p.day}T00:00:00Z`).getTime() + 86_400_000);
    if (dayEnd > cutoff && !p.detached) continue; // whole day not old enough
    if (!p.detached && !(await monthReconciled(db, p.day.slice(0, 7)))) {
      // The month is not reconciled yet: the whole day waits, counted as unbilled.
      out.keptUnbilled += await countDay(p.name);
      continue;
    }
    const keep = keepAccounts(dayEnd);
    const total = await countDay(p.name);
    const kept = await count(`SELECT count(*)::bigint AS n FROM ?? e WHERE ${KEEP_SQL}`, [p.name, keep]);
    if (kept === total && !p.detached) {
      await countKept(db, p.name, out, keep, held);
      continue;
    }
    if (!p.detached) await detach(db, p.name);
    else if (p.pending) await db.raw(`ALTER TABLE usage_events DETACH PARTITION ?? FINALIZE`, [p.name]);
    ctx.onProgress?.();
    // Detached: move what must stay into the default partition, then drop the day. A crash in
    // between leaves the table detached; the next run finds it and finishes (the insert is idempotent).
    await db.transaction(async (trx) => {
      await trx.raw(`INSERT INTO usage_events SELECT e.* FROM ?? e WHERE ${KEEP_SQL} ON CONFLICT (request_id, occurred_at) DO NOTHING`, [p.name, keep]);
      await trx.raw(`DROP TABLE ??`, [p.name]);
    });
    out.expiredRows += total - kept;
    out.expiredPartitions++;
    ctx.onProgress?.();
    pause = (performance.now() - dayStarted) * (ctx.pauseFactor ?? 0);
  }
  // Rows kept earlier (default partition) that are now billed and past the period.
  out.expiredRows += await deleteInBatches(
    ctx,
    'usage_events_retained',
    'request_id',
    `occurred_at < ? AND request_id IN (SELECT e.request_id FROM usage_events_retained e WHERE e.occurred_at < ? AND NOT ${MUST_KEEP})`,
    [cutoff, cutoff],
  );
  const still = (await db.raw(`SELECT ${KEEP_REASON} AS reason, count(*)::bigint AS n FROM usage_events_retained e WHERE e.occurred_at < ? AND ${MUST_KEEP} GROUP BY 1`, [cutoff])).rows;
  for (const s of still) {
    if (s.reason === 'hold') out.keptHold += Number(s.n);
    else out.keptUnbilled += Number(s.n);
  }
  return out;
}

/**
 * Detaching needs a brief exclusive lock on usage_events (CONCURRENTLY is not
 * allowed while a default partition exists). It is taken in a transaction of
 * its own with a short lock_timeout and retried, so the metering batcher's
 * inserts wait at most that long behind it, and never behind a long query.
 */
async function detach(db: Db, table: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await db.transaction(async (trx) => {
        await trx.raw(`SET LOCAL lock_timeout = '100ms'`);
        await trx.raw(`ALTER TABLE usage_events DETACH PARTITION ??`, [table]);
      });
      return;
    } catch (err) {
      if ((err as { code?: string }).code !== '55P03' || attempt >= 50) throw err; // lock_not_available
      await new Promise((r) => setTimeout(r, Math.min(2_000, 50 * attempt)));
    }
  }
}

async function countKept(db: Db, table: string, out: CategoryOutcome, keep: string[], held: string[]): Promise<void> {
  const { rows } = await db.raw(
    `SELECT CASE WHEN e.account_id = ANY(?::uuid[]) THEN 'hold' ELSE 'unbilled' END AS reason, count(*)::bigint AS n FROM ?? e WHERE ${KEEP_SQL} GROUP BY 1`,
    [held, table, keep],
  );
  for (const r of rows) {
    if (r.reason === 'hold') out.keptHold += Number(r.n);
    else out.keptUnbilled += Number(r.n);
  }
}

/** Source IP truncated (/24, /48) and User-Agent removed, in batches, on events older than the cutoff. */
export async function minimiseNetworkFields(ctx: ExpiryContext, cutoff: Date): Promise<CategoryOutcome> {
  const out = blank('usage_events.network', cutoff);
  for (;;) {
    const r = await ctx.db.raw(
      `UPDATE usage_events t
          SET source_ip = CASE WHEN t.source_ip IS NULL THEN NULL
                               WHEN family(t.source_ip) = 4 THEN set_masklen(network(set_masklen(t.source_ip, 24)), 24)
                               ELSE set_masklen(network(set_masklen(t.source_ip, 48)), 48) END,
              user_agent = NULL,
              network_minimised = true
        WHERE (t.request_id, t.occurred_at) IN (
              SELECT e.request_id, e.occurred_at FROM usage_events e
               WHERE NOT e.network_minimised AND e.occurred_at < ? AND e.account_id NOT IN (${HELD})
               LIMIT ?)`,
      [cutoff, ctx.batchSize],
    );
    const n = rowCount(r);
    out.expiredRows += n;
    ctx.onProgress?.();
    if (n < ctx.batchSize) break;
  }
  out.keptHold = Number((await ctx.db.raw(`SELECT count(*)::bigint AS n FROM usage_events e WHERE NOT e.network_minimised AND e.occurred_at < ? AND e.account_id IN (${HELD})`, [cutoff])).rows[0].n);
  return out;
}

function blank(category: string, cutoff: Date): CategoryOutcome {
  return { category, cutoff: cutoff.toISOString(), expiredRows: 0, expiredPartitions: 0, keptHold: 0, keptUnbilled: 0, keptOther: 0, note: null };
}

export async function expireRows(ctx: ExpiryContext, policy: Policy, cutoff: Date): Promise<CategoryOutcome> {
  const out = blank(policy.category, cutoff);
  const { db } = ctx;
  switch (policy.category) {
    case 'security_events':
      out.expiredRows = await deleteInBatches(ctx, 'security_events', 'id', `occurred_at < ? AND (account_id IS NULL OR account_id NOT IN (${HELD}))`, [cutoff]);
      out.keptHold = Number((await db.raw(`SELECT count(*)::bigint AS n FROM security_events WHERE occurred_at < ? AND account_id IN (${HELD})`, [cutoff])).rows[0].n);
      break;
    case 'login_records':
      out.expiredRows = await deleteInBatches(ctx, 'login_records', 'id', `at < ? AND user_id NOT IN (SELECT id FROM users WHERE account_id IN (${HELD}))`, [cutoff]);
      out.keptHold = Number((await db.raw(`SELECT count(*)::bigint AS n FROM login_records WHERE at < ? AND user_id IN (SELECT id FROM users WHERE account_id IN (${HELD}))`, [cutoff])).rows[0].n);
      break;
    case 'notification_outbox':
      out.expiredRows = await deleteInBatches(ctx, 'notification_outbox', 'id', `sent_at IS NOT NULL AND created_at < ?`, [cutoff]);
      break;
    case 'dsr_packages': {
      // A package goes at its link's expiry or at the policy's age, whichever is first; the row stays as the record that it existed.
      const r = await db.raw(`UPDATE dsr_exports SET ciphertext = NULL, deleted_at = now() WHERE ciphertext IS NOT NULL AND (expires_at < ? OR created_at < ?)`, [ctx.now, cutoff]);
      out.expiredRows = rowCount(r);
      break;
    }
    case 'dsr_requests': {
      const ids: string[] = await db('dsr_requests').whereNotNull('closed_at').where('closed_at', '<', cutoff).pluck('id');
      for (let i = 0; i < ids.length; i += ctx.batchSize) {
        const chunk = ids.slice(i, i + ctx.batchSize);
        await db.transaction(async (trx) => {
          await trx.raw(`SET LOCAL mixroute.retention = 'on'`);
          await trx('dsr_events').whereIn('request_id', chunk).delete();
          await trx('dsr_exports').whereIn('request_id', chunk).delete();
          await trx('dsr_requests').whereIn('id', chunk).delete();
        });
        out.expiredRows += chunk.length;
        ctx.onProgress?.();
      }
      break;
    }
    case 'closed_accounts': {
      const accounts: string[] = (await db.raw(`SELECT id FROM accounts WHERE status = 'closed' AND updated_at < ? AND id NOT IN (${HELD})`, [cutoff])).rows.map((r: { id: string }) => r.id);
      for (const id of accounts) {
        const r = await db.raw(
          `UPDATE users SET name = 'erased', email = 'erased-' || id || '@erased.invalid', phone = NULL, job_title = NULL, erased_at = now(), processing_restricted = true, updated_at = now()
            WHERE account_id = ? AND erased_at IS NULL`,
          [id],
        );
        await db('accounts').where({ id }).update({ billing_email: null, processing_restricted: true });
        out.expiredRows += rowCount(r);
        ctx.onProgress?.();
      }
      out.keptHold = Number((await db.raw(`SELECT count(*)::bigint AS n FROM accounts WHERE status = 'closed' AND updated_at < ? AND id IN (${HELD})`, [cutoff])).rows[0].n);
      break;
    }
    case 'invoices':
      await expireInvoices(ctx, cutoff, out);
      await finishKeptRecords(ctx, ['invoices', 'tax_data']);
      break;
    case 'payments':
      out.expiredRows = await deleteInBatches(ctx, 'payments', 'id', `received_at < ? AND account_id NOT IN (${HELD})`, [cutoff]);
      out.keptHold = Number((await db.raw(`SELECT count(*)::bigint AS n FROM payments WHERE received_at < ? AND account_id IN (${HELD})`, [cutoff])).rows[0].n);
      await finishKeptRecords(ctx, ['payments']);
      break;
    case 'ledger_entries':
      await expireLedgerEntries(ctx, cutoff, out);
      await finishKeptRecords(ctx, ['ledger_entries']);
      break;
    default:
      out.note = `no expiry is implemented for category ${policy.category}`;
  }
  return out;
}

/**
 * Invoices past their period go with their lines, the usage_hourly rows they
 * consumed and their credit notes; an invoice whose credit note is still
 * within its period stays (the note refers to it). Batches, each in one
 * transaction that the immutability triggers let through (retention flag).
 */
async function expireInvoices(ctx: ExpiryContext, cutoff: Date, out: CategoryOutcome): Promise<void> {
  const { db } = ctx;
  for (;;) {
    const n = await db.transaction(async (trx) => {
      await trx.raw(`SET LOCAL mixroute.retention = 'on'`);
      const ids: string[] = (
        await trx.raw(
          `SELECT i.id FROM invoices i
            WHERE COALESCE(i.issued_at, i.created_at) < ? AND i.account_id NOT IN (${HELD})
              AND NOT EXISTS (SELECT 1 FROM invoices c WHERE c.voids_invoice_id = i.id AND COALESCE(c.issued_at, c.created_at) >= ?)
            ORDER BY i.id LIMIT ? FOR UPDATE`,
          [cutoff, cutoff, ctx.batchSize],
        )
      ).rows.map((r: { id: string }) => r.id);
      if (!ids.length) return 0;
      // Their usage: the rows they marked (late rows, and everything from before boundaries), and the
      // normal rows of the hours each consumed through the boundary.
      await trx('usage_hourly').whereIn('invoiced_by', ids).delete();
      await trx.raw(
        `DELETE FROM usage_hourly u USING invoices i WHERE i.id = ANY(?::uuid[]) AND ${CONSUMED_THROUGH_BOUNDARY}`,
        [ids],
      );
      await trx('invoice_lines').whereIn('invoice_id', ids).delete();
      // An invoice and its credit note refer to each other; one statement deletes both (the keys are checked at its end).
      await trx('invoices').whereIn('id', ids).delete();
      return ids.length;
    });
    out.expiredRows += n;
    ctx.onProgress?.();
    if (n < ctx.batchSize) break;
  }
  out.keptHold = Number((await db.raw(`SELECT count(*)::bigint AS n FROM invoices WHERE COALESCE(issued_at, created_at) < ? AND account_id IN (${HELD})`, [cutoff])).rows[0].n);
  out.keptOther = Number(
    (await db.raw(`SELECT count(*)::bigint AS n FROM invoices i WHERE COALESCE(i.issued_at, i.created_at) < ? AND i.account_id NOT IN (${HELD})`, [cutoff])).rows[0].n,
  );
  if (out.keptOther) out.note = 'kept: their credit notes are still within their period';
}

/**
 * Ledger entries past their period are replaced, per account and in one
 * transaction under the balance lock, by one `carried_forward` entry for
 * their sum, so the balance still equals the sum of the account's entries.
 * An entry reversed by one still kept stays with it. An account whose only old
 * entry is an earlier carry-forward is left alone (nothing new to expire).
 */
async function expireLedgerEntries(ctx: ExpiryContext, cutoff: Date, out: CategoryOutcome): Promise<void> {
  const { db } = ctx;
  const accounts: string[] = (
    await db.raw(
      `SELECT DISTINCT account_id FROM ledger_entries
        WHERE created_at < ? AND kind <> 'carried_forward' AND account_id NOT IN (${HELD})`,
      [cutoff],
    )
  ).rows.map((r: { account_id: string }) => r.account_id);
  for (const accountId of accounts) {
    out.expiredRows += await db.transaction(async (trx) => {
      await trx.raw(`SET LOCAL mixroute.retention = 'on'`);
      await lockBalances(trx, [accountId]);
      const old = (
        await trx.raw(
          `SELECT e.id, e.kind FROM ledger_entries e
            WHERE e.account_id = ? AND e.created_at < ?
              AND NOT EXISTS (SELECT 1 FROM ledger_entries r WHERE r.reverses_entry_id = e.id AND r.created_at >= ?)
            ORDER BY e.id`,
          [accountId, cutoff, cutoff],
        )
      ).rows as { id: string; kind: string }[];
      if (!old.length) return 0;
      const ids = old.map((e) => e.id);
      const { rows } = await trx.raw(`SELECT COALESCE(sum(amount), 0)::text AS total FROM ledger_entries WHERE id = ANY(?::bigint[])`, [ids]);
      const total = rows[0].total as string;
      await trx('ledger_entries').whereIn('id', ids).delete();
      await trx('ledger_entries').insert({
        account_id: accountId,
        kind: 'carried_forward',
        contra: 'carried_forward',
        amount: total,
        idempotency_key: `carried_forward:${accountId}:${cutoff.toISOString()}:${ids.at(-1)}`,
        reference_type: 'retention',
        reference_id: cutoff.toISOString().slice(0, 10),
        actor: 'system:retention',
        reason: `entries before ${cutoff.toISOString().slice(0, 10)} expired after their statutory period; their sum is carried forward`,
        balance_after: total,
        // Dated just before the cutoff: it stands for the expired entries, and next year's run folds it in with the next ones.
        created_at: new Date(cutoff.getTime() - 1),
      });
      // An earlier carry-forward folded into this one is not an expired entry of its own.
      return old.filter((e) => e.kind !== 'carried_forward').length;
    });
    ctx.onProgress?.();
  }
  out.keptHold = Number((await db.raw(`SELECT count(*)::bigint AS n FROM ledger_entries WHERE created_at < ? AND account_id IN (${HELD})`, [cutoff])).rows[0].n);
}

/** When a kept record of a category counts as gone for an account: nothing of it from before the request's erasure is left. */
const KEPT_REMAINING: Record<string, string> = {
  invoices: `EXISTS (SELECT 1 FROM invoices i WHERE i.account_id = k.account_id AND COALESCE(i.issued_at, i.created_at) <= k.kept_at)`,
  tax_data: `EXISTS (SELECT 1 FROM invoices i WHERE i.account_id = k.account_id AND COALESCE(i.issued_at, i.created_at) <= k.kept_at)`,
  payments: `EXISTS (SELECT 1 FROM payments p WHERE p.account_id = k.account_id AND p.received_at <= k.kept_at)`,
  ledger_entries: `EXISTS (SELECT 1 FROM ledger_entries e WHERE e.account_id = k.account_id AND e.created_at <= k.kept_at AND e.kind <> 'carried_forward')`,
  usage_metadata: `EXISTS (SELECT 1 FROM usage_events e WHERE e.user_id = k.subject_user_id AND e.occurred_at <= k.kept_at)`,
};

/**
 * Finishes what deletion requests had to keep: once the records of a category
 * that an erased subject's account had at the time are all gone (billing
 * records past their period; usage metadata once billed), the kept record is closed, the evidence gains the count (never a
 * value), and the request's trail says so (if the request itself has not yet
 * expired; the evidence outlives it). For tax data, a closed account's VAT id
 * goes too; an active business account keeps its current VAT id.
 */
export async function finishKeptRecords(ctx: ExpiryContext, categories: string[]): Promise<number> {
  let finished = 0;
  for (const category of categories) {
    const due = (
      await ctx.db.raw(
        `SELECT k.request_id, k.account_id, k.rows FROM dsr_kept_records k
          WHERE k.category = ? AND k.erased_at IS NULL AND k.account_id NOT IN (${HELD}) AND NOT ${KEPT_REMAINING[category]}`,
        [category],
      )
    ).rows as { request_id: string; account_id: string; rows: number }[];
    for (const k of due) {
      await ctx.db.transaction(async (trx) => {
        const open = await trx('dsr_kept_records').where({ request_id: k.request_id, account_id: k.account_id, category }).whereNull('erased_at').forUpdate().first();
        if (!open) return;
        if (category === 'tax_data') await trx('accounts').where({ id: k.account_id, status: 'closed' }).update({ vat_id: null, updated_at: trx.fn.now() });
        await trx('dsr_kept_records').where({ request_id: k.request_id, account_id: k.account_id, category }).update({ erased_at: trx.fn.now() });
        await trx.raw(
          `INSERT INTO erasure_evidence (request_id, category, rows, action) VALUES (?, ?, ?, 'erased_after_retention')
           ON CONFLICT (request_id, category, action) DO UPDATE SET rows = erasure_evidence.rows + EXCLUDED.rows, at = now()`,
          [k.request_id, category, k.rows],
        );
        if (await trx('dsr_requests').where({ id: k.request_id }).first('id')) {
          await trx('dsr_events')
            .insert({
              request_id: k.request_id,
              actor: 'system:retention',
              action: 'kept_records_erased',
              detail: JSON.stringify({ category, accountId: k.account_id, rows: k.rows }),
              idempotency_key: `kept_records_erased:${k.account_id}:${category}`,
            })
            .onConflict(['request_id', 'idempotency_key'])
            .ignore();
        }
      });
      finished++;
      ctx.onProgress?.();
    }
  }
  return finished;
}

/**
 * The usage events of subjects who asked for deletion go
 * as soon as they are billed, whatever the usage-events period: the same
 * guards as any expiry (settled, month reconciled, nothing uninvoiced before
 * them, no legal hold). Row by row in batches: there are few of them.
 */
async function expireErasedSubjectsUsage(ctx: ExpiryContext, cutoff: Date): Promise<CategoryOutcome> {
  const out = blank('usage_events.erased_subjects', cutoff);
  // Nearly every day there is nothing to do: do not let the planner near the events table then.
  if (!(await ctx.db('dsr_kept_records').where({ category: 'usage_metadata' }).whereNull('erased_at').first('request_id'))) return out;
  // Driven by the deletion requests' open kept records, so the account index finds the rows (usage_events has no user index, on purpose: the metering insert path pays for every index).
  const ERASED = `(e.account_id, e.user_id) IN (SELECT account_id, subject_user_id FROM dsr_kept_records WHERE category = 'usage_metadata' AND erased_at IS NULL) AND e.occurred_at < ?`;
  for (;;) {
    const r = await ctx.db.raw(
      `DELETE FROM usage_events t WHERE (t.request_id, t.occurred_at) IN (
         SELECT e.request_id, e.occurred_at FROM usage_events e WHERE ${ERASED} AND NOT ${MUST_KEEP} LIMIT ?)`,
      [cutoff, ctx.batchSize],
    );
    const n = rowCount(r);
    out.expiredRows += n;
    ctx.onProgress?.();
    if (n < ctx.batchSize) break;
  }
  for (const row of (await ctx.db.raw(`SELECT ${KEEP_REASON} AS reason, count(*)::bigint AS n FROM usage_events e WHERE ${ERASED} AND ${MUST_KEEP} GROUP BY 1`, [cutoff])).rows) {
    if (row.reason === 'hold') out.keptHold += Number(row.n);
    else out.keptUnbilled += Number(row.n);
  }
  await finishKeptRecords(ctx, ['usage_metadata']);
  return out;
}

export async function runCategory(ctx: ExpiryContext, policy: Policy): Promise<CategoryOutcome> {
  const cutoff = cutoffFor(policy, ctx.now);
  if (policy.category === 'usage_events.erased_subjects') return expireErasedSubjectsUsage(ctx, cutoff);
  if (policy.category === 'usage_events') return expireUsageEvents(ctx, cutoff);
  if (policy.category === 'usage_events.network') return minimiseNetworkFields(ctx, cutoff);
  return expireRows(ctx, policy, cutoff);
}
