import type { Db, DbOrTrx, Trx } from '../db/knex';
import { CONSUMED_THROUGH_BOUNDARY, openUsageExistsSql } from '../metering/uninvoiced.data';
import type { CategoryOutcome, Policy } from './retention.rules';

/**
 * Queries of metadata expiry, legal holds, policies and runs. The run loop,
 * its pacing and its transactions are in expiry.service.ts.
 *
 * Guards, everywhere: nothing of an account under an open legal hold is
 * expired; no usage event is expired before it is billed: settled, its
 * month reconciled (a finished reconciliation of that period), and no
 * uninvoiced cost of its account from before it.
 */

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

const rowCount = (r: unknown) => Number((r as { rowCount?: number })?.rowCount ?? 0);
const countOf = async (db: DbOrTrx, sql: string, bindings: (string | Date)[]) => Number((await db.raw(sql, bindings)).rows[0].n);

export interface KeptCount {
  reason: 'hold' | 'unbilled';
  n: string | number;
}

/** One batch of a row-by-row category: deletes up to `limit` rows matching `where`. */
async function deleteBatch(db: DbOrTrx, table: string, idColumn: string, where: string, bindings: (string | number | Date)[], limit: number): Promise<number> {
  return rowCount(await db.raw(`DELETE FROM ?? WHERE ?? IN (SELECT ?? FROM ?? WHERE ${where} LIMIT ?)`, [table, idColumn, idColumn, table, ...bindings, limit]));
}

/** Lets this transaction's deletes of billing records and request trails through the immutability triggers. */
export async function allowRetentionDeletes(trx: Trx): Promise<void> {
  await trx.raw(`SET LOCAL mixroute.retention = 'on'`);
}

// --- usage events -------------------------------------------------------------------

export async function monthReconciled(db: Db, month: string): Promise<boolean> {
  return !!(await db('reconciliation_reports').where({ scope: 'period', label: month, status: 'finished' }).first('id'));
}

export interface PartitionRow {
  name: string;
  day: string;
  detached: boolean;
  pending: boolean;
}

/** Day partitions of usage_events, attached or left detached by an interrupted run. */
export async function dayPartitions(db: Db): Promise<PartitionRow[]> {
  const { rows } = await db.raw(
    `SELECT c.relname AS name, i.inhrelid IS NULL AS detached, COALESCE(i.inhdetachpending, false) AS pending
       FROM pg_class c
       LEFT JOIN pg_inherits i ON i.inhrelid = c.oid AND i.inhparent = 'usage_events'::regclass
      WHERE c.relkind = 'r' AND c.relname ~ '^usage_events_[0-9]{8}$' AND c.relnamespace = 'public'::regnamespace
      ORDER BY c.relname`,
  );
  return rows.map((r: { name: string; detached: boolean; pending: boolean }) => ({ ...r, day: `${r.name.slice(13, 17)}-${r.name.slice(17, 19)}-${r.name.slice(19, 21)}` }));
}

/** Accounts under an open legal hold. */
export async function heldAccounts(db: Db): Promise<string[]> {
  return (await db.raw(HELD)).rows.map((r: { account_id: string }) => r.account_id);
}

/** Accounts with uninvoiced cost, and the hour it starts from. */
export async function unbilledAccounts(db: Db): Promise<{ account_id: string; since: Date }[]> {
  return (
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
}

/** Keeps this transaction's scans on one backend: a parallel scan of a day takes every core. */
export async function noParallelScan(trx: Trx): Promise<void> {
  await trx.raw(`SET LOCAL max_parallel_workers_per_gather = 0`);
}

export async function relationPages(db: Db, table: string): Promise<number> {
  return Number((await db.raw(`SELECT pg_relation_size(?::regclass) / current_setting('block_size')::int AS pages`, [table])).rows[0].pages);
}

/** Rows of a day's table in pages [from, to), by TID range. */
export async function countPages(db: DbOrTrx, table: string, from: number, to: number): Promise<number> {
  return Number((await db.raw(`SELECT count(*)::bigint AS n FROM ?? WHERE ctid >= ?::tid AND ctid < ?::tid`, [table, `(${from},0)`, `(${to},0)`])).rows[0].n);
}

/** Rows of a day's table that must stay, given the accounts to keep. */
export async function countKeptInDay(db: DbOrTrx, table: string, keep: string[]): Promise<number> {
  return Number((await db.raw(`SELECT count(*)::bigint AS n FROM ?? e WHERE ${KEEP_SQL}`, [table, keep])).rows[0].n);
}

/** Rows of a day's table that must stay, by reason. */
export async function keptInDayByReason(db: Db, table: string, keep: string[], held: string[]): Promise<KeptCount[]> {
  const { rows } = await db.raw(
    `SELECT CASE WHEN e.account_id = ANY(?::uuid[]) THEN 'hold' ELSE 'unbilled' END AS reason, count(*)::bigint AS n FROM ?? e WHERE ${KEEP_SQL} GROUP BY 1`,
    [held, table, keep],
  );
  return rows;
}

/** Detaches a day partition, waiting at most 100 ms for the lock (SQLSTATE 55P03 when it is not granted). */
export async function detachPartition(trx: Trx, table: string): Promise<void> {
  await trx.raw(`SET LOCAL lock_timeout = '100ms'`);
  await trx.raw(`ALTER TABLE usage_events DETACH PARTITION ??`, [table]);
}

export async function finalizeDetach(db: Db, table: string): Promise<void> {
  await db.raw(`ALTER TABLE usage_events DETACH PARTITION ?? FINALIZE`, [table]);
}

/** Moves what must stay of a detached day into the default partition (idempotent), then drops the day. */
export async function moveKeptAndDrop(trx: Trx, table: string, keep: string[]): Promise<void> {
  await trx.raw(`INSERT INTO usage_events SELECT e.* FROM ?? e WHERE ${KEEP_SQL} ON CONFLICT (request_id, occurred_at) DO NOTHING`, [table, keep]);
  await trx.raw(`DROP TABLE ??`, [table]);
}

/** One batch of the rows kept earlier (default partition) that are now billed and past the period. */
export async function deleteRetainedUsageBatch(db: Db, cutoff: Date, limit: number): Promise<number> {
  return deleteBatch(
    db,
    'usage_events_retained',
    'request_id',
    `occurred_at < ? AND request_id IN (SELECT e.request_id FROM usage_events_retained e WHERE e.occurred_at < ? AND NOT ${MUST_KEEP})`,
    [cutoff, cutoff],
    limit,
  );
}

export async function retainedUsageKeptByReason(db: Db, cutoff: Date): Promise<KeptCount[]> {
  return (await db.raw(`SELECT ${KEEP_REASON} AS reason, count(*)::bigint AS n FROM usage_events_retained e WHERE e.occurred_at < ? AND ${MUST_KEEP} GROUP BY 1`, [cutoff])).rows;
}

/** One batch: source IP truncated (/24, /48) and User-Agent removed on events older than the cutoff. */
export async function minimiseNetworkBatch(db: Db, cutoff: Date, limit: number): Promise<number> {
  return rowCount(
    await db.raw(
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
      [cutoff, limit],
    ),
  );
}

export async function heldUnminimised(db: Db, cutoff: Date): Promise<number> {
  return countOf(db, `SELECT count(*)::bigint AS n FROM usage_events e WHERE NOT e.network_minimised AND e.occurred_at < ? AND e.account_id IN (${HELD})`, [cutoff]);
}

/** Whether any erased subject still has usage metadata waiting (nearly always not). */
export async function erasedSubjectsUsageWaits(db: Db): Promise<boolean> {
  return !!(await db('dsr_kept_records').where({ category: 'usage_metadata' }).whereNull('erased_at').first('request_id'));
}

// Driven by the deletion requests' open kept records, so the account index finds the rows (usage_events has no user index, on purpose: the metering insert path pays for every index).
const ERASED = `(e.account_id, e.user_id) IN (SELECT account_id, subject_user_id FROM dsr_kept_records WHERE category = 'usage_metadata' AND erased_at IS NULL) AND e.occurred_at < ?`;

export async function deleteErasedSubjectsUsageBatch(db: Db, cutoff: Date, limit: number): Promise<number> {
  return rowCount(
    await db.raw(
      `DELETE FROM usage_events t WHERE (t.request_id, t.occurred_at) IN (
         SELECT e.request_id, e.occurred_at FROM usage_events e WHERE ${ERASED} AND NOT ${MUST_KEEP} LIMIT ?)`,
      [cutoff, limit],
    ),
  );
}

export async function erasedSubjectsUsageKeptByReason(db: Db, cutoff: Date): Promise<KeptCount[]> {
  return (await db.raw(`SELECT ${KEEP_REASON} AS reason, count(*)::bigint AS n FROM usage_events e WHERE ${ERASED} AND ${MUST_KEEP} GROUP BY 1`, [cutoff])).rows;
}

// --- row-by-row categories --------------------------------------------------------------

export const deleteSecurityEventsBatch = (db: Db, cutoff: Date, limit: number) =>
  deleteBatch(db, 'security_events', 'id', `occurred_at < ? AND (account_id IS NULL OR account_id NOT IN (${HELD}))`, [cutoff], limit);
export const heldSecurityEvents = (db: Db, cutoff: Date) => countOf(db, `SELECT count(*)::bigint AS n FROM security_events WHERE occurred_at < ? AND account_id IN (${HELD})`, [cutoff]);

export const deleteLoginRecordsBatch = (db: Db, cutoff: Date, limit: number) =>
  deleteBatch(db, 'login_records', 'id', `at < ? AND user_id NOT IN (SELECT id FROM users WHERE account_id IN (${HELD}))`, [cutoff], limit);
export const heldLoginRecords = (db: Db, cutoff: Date) =>
  countOf(db, `SELECT count(*)::bigint AS n FROM login_records WHERE at < ? AND user_id IN (SELECT id FROM users WHERE account_id IN (${HELD}))`, [cutoff]);

/** Customer console sessions expire with the sign-in records: counted from their expiry, or their sign-out if earlier. */
const SESSION_ENDED = `LEAST(expires_at, revoked_at) < ?`; // LEAST ignores a null revoked_at
export const deleteCustomerSessionsBatch = (db: Db, cutoff: Date, limit: number) =>
  deleteBatch(db, 'customer_sessions', 'id_hash', `${SESSION_ENDED} AND account_id NOT IN (${HELD})`, [cutoff], limit);
export const heldCustomerSessions = (db: Db, cutoff: Date) =>
  countOf(db, `SELECT count(*)::bigint AS n FROM customer_sessions WHERE ${SESSION_ENDED} AND account_id IN (${HELD})`, [cutoff]);

/** Customer console sign-in links expire with the sign-in records too, counted from their creation. */
export const deleteCustomerLoginLinksBatch = (db: Db, cutoff: Date, limit: number) =>
  deleteBatch(db, 'customer_login_links', 'token_hash', `created_at < ? AND user_id NOT IN (SELECT id FROM users WHERE account_id IN (${HELD}))`, [cutoff], limit);
export const heldCustomerLoginLinks = (db: Db, cutoff: Date) =>
  countOf(db, `SELECT count(*)::bigint AS n FROM customer_login_links WHERE created_at < ? AND user_id IN (SELECT id FROM users WHERE account_id IN (${HELD}))`, [cutoff]);

/** Console page view counts (aggregated, per day and page): a day's rows go once the day is before the cutoff's day. */
export const deletePageViewCountsBatch = async (db: Db, cutoff: Date, limit: number) =>
  rowCount(
    await db.raw(`DELETE FROM page_view_counts WHERE (day, page) IN (SELECT day, page FROM page_view_counts WHERE day < (?::timestamptz AT TIME ZONE 'UTC')::date LIMIT ?)`, [cutoff, limit]),
  );

export const deleteSentNotificationsBatch = (db: Db, cutoff: Date, limit: number) => deleteBatch(db, 'notification_outbox', 'id', `sent_at IS NOT NULL AND created_at < ?`, [cutoff], limit);

/** Customer console invitations go with the outbox messages that carried them: counted from acceptance, revocation or expiry, whichever came first. */
const INVITATION_ENDED = `LEAST(expires_at, accepted_at, revoked_at) < ?`; // LEAST ignores nulls
export const deleteEndedInvitationsBatch = (db: Db, cutoff: Date, limit: number) =>
  deleteBatch(db, 'customer_invitations', 'id', `${INVITATION_ENDED} AND account_id NOT IN (${HELD})`, [cutoff], limit);
export const heldEndedInvitations = (db: Db, cutoff: Date) =>
  countOf(db, `SELECT count(*)::bigint AS n FROM customer_invitations WHERE ${INVITATION_ENDED} AND account_id IN (${HELD})`, [cutoff]);

/** A package goes at its link's expiry or at the policy's age, whichever is first; the row stays as the record that it existed. */
export async function expirePackages(db: Db, now: Date, cutoff: Date): Promise<number> {
  return rowCount(await db.raw(`UPDATE dsr_exports SET ciphertext = NULL, deleted_at = now() WHERE ciphertext IS NOT NULL AND (expires_at < ? OR created_at < ?)`, [now, cutoff]));
}

export async function closedRequestIds(db: Db, cutoff: Date): Promise<string[]> {
  return db('dsr_requests').whereNotNull('closed_at').where('closed_at', '<', cutoff).pluck('id');
}

/** Requests with their trail and exports (in a transaction that allowed retention deletes). */
export async function deleteRequests(trx: Trx, ids: string[]): Promise<void> {
  await trx('dsr_events').whereIn('request_id', ids).delete();
  await trx('dsr_exports').whereIn('request_id', ids).delete();
  await trx('dsr_requests').whereIn('id', ids).delete();
}

export async function closedAccountsToErase(db: Db, cutoff: Date): Promise<string[]> {
  return (await db.raw(`SELECT id FROM accounts WHERE status = 'closed' AND updated_at < ? AND id NOT IN (${HELD})`, [cutoff])).rows.map((r: { id: string }) => r.id);
}

/** Erases the contact data of a closed account's users and its billing contact; returns the users erased. */
export async function eraseClosedAccount(db: Db, id: string): Promise<number> {
  const r = await db.raw(
    `UPDATE users SET name = 'erased', email = 'erased-' || id || '@erased.invalid', phone = NULL, job_title = NULL, erased_at = now(), processing_restricted = true, updated_at = now()
      WHERE account_id = ? AND erased_at IS NULL`,
    [id],
  );
  await db('accounts').where({ id }).update({ billing_email: null, processing_restricted: true });
  return rowCount(r);
}

export const heldClosedAccounts = (db: Db, cutoff: Date) => countOf(db, `SELECT count(*)::bigint AS n FROM accounts WHERE status = 'closed' AND updated_at < ? AND id IN (${HELD})`, [cutoff]);

export const deletePaymentsBatch = (db: Db, cutoff: Date, limit: number) => deleteBatch(db, 'payments', 'id', `received_at < ? AND account_id NOT IN (${HELD})`, [cutoff], limit);
export const heldPayments = (db: Db, cutoff: Date) => countOf(db, `SELECT count(*)::bigint AS n FROM payments WHERE received_at < ? AND account_id IN (${HELD})`, [cutoff]);

// --- invoices ---------------------------------------------------------------------------

/** The next batch of invoices past their period, locked; an invoice whose credit note is still within its period stays. */
export async function invoicesToExpire(trx: Trx, cutoff: Date, limit: number): Promise<string[]> {
  return (
    await trx.raw(
      `SELECT i.id FROM invoices i
        WHERE COALESCE(i.issued_at, i.created_at) < ? AND i.account_id NOT IN (${HELD})
          AND NOT EXISTS (SELECT 1 FROM invoices c WHERE c.voids_invoice_id = i.id AND COALESCE(c.issued_at, c.created_at) >= ?)
        ORDER BY i.id LIMIT ? FOR UPDATE`,
      [cutoff, cutoff, limit],
    )
  ).rows.map((r: { id: string }) => r.id);
}

/** Invoices with their lines, credit notes, payment applications, write-offs and the usage_hourly rows they consumed. */
export async function deleteInvoices(trx: Trx, ids: string[]): Promise<void> {
  // Their usage: the rows they marked (late rows, and everything from before boundaries), and the
  // normal rows of the hours each consumed through the boundary.
  await trx('usage_hourly').whereIn('invoiced_by', ids).delete();
  await trx.raw(
    `DELETE FROM usage_hourly u USING invoices i WHERE i.id = ANY(?::uuid[]) AND ${CONSUMED_THROUGH_BOUNDARY}`,
    [ids],
  );
  await trx('invoice_lines').whereIn('invoice_id', ids).delete();
  // Their payment applications and write-offs (docs/collections.md) go with them.
  await trx('invoice_payment_applications').whereIn('invoice_id', ids).delete();
  await trx('invoice_write_offs').whereIn('invoice_id', ids).delete();
  await trx('dunning_steps').whereIn('invoice_id', ids).delete();
  await trx('invoice_payment_requests').whereIn('invoice_id', ids).delete();
  // A suspension's history outlives the invoice that caused it: only the link goes.
  await trx('account_suspensions').whereIn('invoice_id', ids).update({ invoice_id: null });
  // An invoice and its credit note refer to each other; one statement deletes both (the keys are checked at its end).
  await trx('invoices').whereIn('id', ids).delete();
}

export const heldInvoices = (db: Db, cutoff: Date) => countOf(db, `SELECT count(*)::bigint AS n FROM invoices WHERE COALESCE(issued_at, created_at) < ? AND account_id IN (${HELD})`, [cutoff]);
export const keptInvoices = (db: Db, cutoff: Date) =>
  countOf(db, `SELECT count(*)::bigint AS n FROM invoices i WHERE COALESCE(i.issued_at, i.created_at) < ? AND i.account_id NOT IN (${HELD})`, [cutoff]);

// --- ledger entries -----------------------------------------------------------------------

export async function ledgerAccountsToExpire(db: Db, cutoff: Date): Promise<string[]> {
  return (
    await db.raw(
      `SELECT DISTINCT account_id FROM ledger_entries
        WHERE created_at < ? AND kind <> 'carried_forward' AND account_id NOT IN (${HELD})`,
      [cutoff],
    )
  ).rows.map((r: { account_id: string }) => r.account_id);
}

/**
 * Replaces an account's entries from before the cutoff by one `carried_forward`
 * entry for their sum (under the balance lock the caller holds). An entry
 * reversed by one still kept stays with it. Returns the entries expired.
 */
export async function carryForward(trx: Trx, accountId: string, cutoff: Date): Promise<number> {
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
}

export const heldLedgerEntries = (db: Db, cutoff: Date) => countOf(db, `SELECT count(*)::bigint AS n FROM ledger_entries WHERE created_at < ? AND account_id IN (${HELD})`, [cutoff]);

// --- kept records of deletion requests ------------------------------------------------------

/** When a kept record of a category counts as gone for an account: nothing of it from before the request's erasure is left. */
const KEPT_REMAINING: Record<string, string> = {
  invoices: `EXISTS (SELECT 1 FROM invoices i WHERE i.account_id = k.account_id AND COALESCE(i.issued_at, i.created_at) <= k.kept_at)`,
  tax_data: `EXISTS (SELECT 1 FROM invoices i WHERE i.account_id = k.account_id AND COALESCE(i.issued_at, i.created_at) <= k.kept_at)`,
  payments: `EXISTS (SELECT 1 FROM payments p WHERE p.account_id = k.account_id AND p.received_at <= k.kept_at)`,
  ledger_entries: `EXISTS (SELECT 1 FROM ledger_entries e WHERE e.account_id = k.account_id AND e.created_at <= k.kept_at AND e.kind <> 'carried_forward')`,
  usage_metadata: `EXISTS (SELECT 1 FROM usage_events e WHERE e.user_id = k.subject_user_id AND e.occurred_at <= k.kept_at)`,
};

export interface KeptRecord {
  request_id: string;
  account_id: string;
  rows: number;
}

/** Open kept records of the category whose records are all gone (accounts under hold wait). */
export async function keptRecordsDue(db: Db, category: string): Promise<KeptRecord[]> {
  return (
    await db.raw(
      `SELECT k.request_id, k.account_id, k.rows FROM dsr_kept_records k
        WHERE k.category = ? AND k.erased_at IS NULL AND k.account_id NOT IN (${HELD}) AND NOT ${KEPT_REMAINING[category]}`,
      [category],
    )
  ).rows;
}

/**
 * Closes a kept record (locked; false if another run closed it): for tax data a
 * closed account's VAT id goes, the evidence gains the count (never a value),
 * and the request's trail says so if the request has not expired yet.
 */
export async function closeKeptRecord(trx: Trx, k: KeptRecord, category: string): Promise<boolean> {
  const open = await trx('dsr_kept_records').where({ request_id: k.request_id, account_id: k.account_id, category }).whereNull('erased_at').forUpdate().first();
  if (!open) return false;
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
  return true;
}

// --- runs, policies, holds ------------------------------------------------------------------

export async function insertRun(db: Db, run: { id: string; workflowId: string; trigger: 'schedule' | 'staff'; requestedBy: string }): Promise<void> {
  await db('retention_runs').insert({ id: run.id, workflow_id: run.workflowId, trigger: run.trigger, requested_by: run.requestedBy }).onConflict('id').ignore();
}

export async function policyCategories(db: Db): Promise<string[]> {
  return db('retention_policies').pluck('category');
}

export async function findPolicy(db: Db, category: string): Promise<Policy | undefined> {
  return db('retention_policies').where({ category }).first();
}

/** The periods in force of the given categories. */
export async function policyPeriods(db: DbOrTrx, categories: string[]): Promise<Map<string, number>> {
  return new Map<string, number>((await db('retention_policies').whereIn('category', categories).select('category', 'period')).map((p: { category: string; period: number }) => [p.category, p.period]));
}

export async function saveRunCategory(
  db: Db,
  runId: string,
  o: CategoryOutcome,
  startedAt: Date,
  finishedAt: Date,
): Promise<void> {
  await db('retention_run_categories')
    .insert({
      run_id: runId,
      category: o.category,
      cutoff: o.cutoff,
      expired_rows: o.expiredRows,
      expired_partitions: o.expiredPartitions,
      kept_hold: o.keptHold,
      kept_unbilled: o.keptUnbilled,
      kept_other: o.keptOther,
      note: o.note,
      started_at: startedAt,
      finished_at: finishedAt,
    })
    .onConflict(['run_id', 'category'])
    .merge();
}

export async function finishRun(db: Db, runId: string): Promise<void> {
  await db('retention_runs').where({ id: runId }).update({ status: 'finished', finished_at: db.raw('COALESCE(finished_at, now())') });
}

export async function runCategories(db: Db, runId: string): Promise<any[]> {
  return db('retention_run_categories').where({ run_id: runId }).orderBy('started_at');
}

/** Newest first; `before` is a run id known to exist. */
export async function listRuns(db: Db, page: { limit: number; before?: string }): Promise<any[]> {
  const q = db('retention_runs').orderBy([{ column: 'started_at', order: 'desc' }, { column: 'id', order: 'desc' }]).limit(page.limit);
  if (page.before) q.whereRaw('(started_at, id) < (SELECT started_at, id FROM retention_runs WHERE id = ?)', [page.before]);
  return q;
}

export async function runExists(db: Db, id: string): Promise<boolean> {
  return !!(await db('retention_runs').where({ id }).first('id'));
}

export async function findRun(db: Db, id: string): Promise<any> {
  return db('retention_runs').where({ id }).first();
}

export async function listPolicies(db: Db): Promise<any[]> {
  return db('retention_policies').orderBy('category');
}

export async function lockPolicy(trx: Trx, category: string): Promise<any> {
  return trx('retention_policies').where({ category }).forUpdate().first();
}

/** Changes a category's period and records the change with who and why. */
export async function changePeriod(trx: Trx, p: { category: string; period: number }, period: number, actor: string, reason: string): Promise<void> {
  await trx('retention_policy_changes').insert({ category: p.category, old_period: p.period, new_period: period, changed_by: actor, reason });
  await trx('retention_policies').where({ category: p.category }).update({ period, updated_at: trx.fn.now(), updated_by: actor });
}

export async function accountExists(db: Db, id: string): Promise<boolean> {
  return !!(await db('accounts').where({ id }).first('id'));
}

export async function insertHold(db: Db, hold: { accountId: string; reason: string; actor: string }): Promise<any> {
  const [h] = await db('legal_holds').insert({ account_id: hold.accountId, reason: hold.reason, created_by: hold.actor }).returning('*');
  return h;
}

export async function findHold(db: Db, id: string): Promise<any> {
  return db('legal_holds').where({ id }).first();
}

export async function releaseHold(db: Db, id: string, actor: string, reason: string): Promise<any> {
  const [r] = await db('legal_holds').where({ id }).update({ released_at: db.fn.now(), released_by: actor, release_reason: reason }).returning('*');
  return r;
}

export async function holdExists(db: Db, id: string): Promise<boolean> {
  return !!(await db('legal_holds').where({ id }).first('id'));
}

/** Newest first; `before` is a hold id known to exist. */
export async function listHolds(db: Db, page: { limit: number; before?: string; active?: 'true' | 'false' }): Promise<any[]> {
  const q = db('legal_holds').orderBy([{ column: 'created_at', order: 'desc' }, { column: 'id', order: 'desc' }]).limit(page.limit);
  if (page.active === 'true') q.whereNull('released_at');
  if (page.before) q.whereRaw('(created_at, id) < (SELECT created_at, id FROM legal_holds WHERE id = ?)', [page.before]);
  return q;
}
