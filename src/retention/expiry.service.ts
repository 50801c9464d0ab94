import type { Db } from '../db/knex';
import { lockBalances } from '../ledger/ledger.data';
import * as data from './retention.data';
import { blankOutcome, cutoffFor, type CategoryOutcome, type Policy } from './retention.rules';

/**
 * Metadata expiry, per category of retention_policies: the run loop, its
 * pacing and its transactions (the queries and their guards are in
 * retention.data.ts, the periods and cutoffs in retention.rules.ts).
 *
 * Row-by-row categories go in bounded batches, so a killed worker resumes
 * where it stopped; whole days of usage events go by dropping their partition
 * (after moving the rows that must stay into the default partition); the
 * detach holds its lock for milliseconds (see detach) so the metering
 * batcher's inserts barely notice.
 */

export type { CategoryOutcome, Policy } from './retention.rules';

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

/** A slice of a day's count: 32 MB of heap, a few milliseconds of one core. */
const COUNT_SLICE_PAGES = 4_096;

async function deleteInBatches(ctx: ExpiryContext, batch: (limit: number) => Promise<number>): Promise<number> {
  let total = 0;
  for (;;) {
    const n = await batch(ctx.batchSize);
    total += n;
    ctx.onProgress?.();
    if (n < ctx.batchSize) return total;
  }
}

function addKept(out: CategoryOutcome, rows: data.KeptCount[]): void {
  for (const r of rows) {
    if (r.reason === 'hold') out.keptHold += Number(r.n);
    else out.keptUnbilled += Number(r.n);
  }
}

/** Raw usage events: whole days by partition, then the kept rows in the default partition as they become billed. */
export async function expireUsageEvents(ctx: ExpiryContext, cutoff: Date): Promise<CategoryOutcome> {
  const { db } = ctx;
  const out = blankOutcome('usage_events', cutoff);
  // The accounts whose usage must stay, looked up once: few, so the rows to keep are found
  // through indexes (unsettled, account and time) and a day costs one count, not three scans.
  const held = await data.heldAccounts(db);
  const unbilled = await data.unbilledAccounts(db);
  const keepAccounts = (dayEnd: Date) => [...new Set([...held, ...unbilled.filter((u) => new Date(u.since) < dayEnd).map((u) => u.account_id)])];
  // A day is counted by one backend: a parallel scan of a day (hundreds of MB) takes every
  // core for its duration, and the metering batcher's inserts queue behind it.
  const count = (q: (trx: Parameters<typeof data.noParallelScan>[0]) => Promise<number>) =>
    db.transaction(async (trx) => {
      await data.noParallelScan(trx);
      return q(trx);
    });
  // All rows of a day: a scan of its whole heap (about 330 MB at a million events), in slices
  // of COUNT_SLICE_PAGES pages by TID range with the pause factor's pause after each, so the
  // scan never holds a core for long while inserts wait for one.
  const countDay = async (table: string) => {
    const pages = await data.relationPages(db, table);
    const slice = ctx.countSlicePages ?? COUNT_SLICE_PAGES;
    let n = 0;
    for (let from = 0; from < pages; from += slice) {
      const started = performance.now();
      n += await count((trx) => data.countPages(trx, table, from, from + slice));
      const rest = (performance.now() - started) * (ctx.pauseFactor ?? 0);
      if (rest > 0 && from + slice < pages) {
        ctx.onPause?.(rest, 'count');
        await new Promise((r) => setTimeout(r, rest));
      }
    }
    return n;
  };

  let pause = 0;
  for (const p of await data.dayPartitions(db)) {
    if (pause > 0) {
      ctx.onPause?.(pause, 'drop');
      await new Promise((r) => setTimeout(r, pause));
    }
    pause = 0;
    const dayStarted = performance.now();
    const dayEnd = new Date(new Date(`${p.day}T00:00:00Z`).getTime() + 86_400_000);
    if (dayEnd > cutoff && !p.detached) continue; // whole day not old enough
    if (!p.detached && !(await data.monthReconciled(db, p.day.slice(0, 7)))) {
      // The month is not reconciled yet: the whole day waits, counted as unbilled.
      out.keptUnbilled += await countDay(p.name);
      continue;
    }
    const keep = keepAccounts(dayEnd);
    const total = await countDay(p.name);
    const kept = await count((trx) => data.countKeptInDay(trx, p.name, keep));
    if (kept === total && !p.detached) {
      addKept(out, await data.keptInDayByReason(db, p.name, keep, held));
      continue;
    }
    if (!p.detached) await detach(db, p.name);
    else if (p.pending) await data.finalizeDetach(db, p.name);
    ctx.onProgress?.();
    // Detached: move what must stay into the default partition, then drop the day. A crash in
    // between leaves the table detached; the next run finds it and finishes (the insert is idempotent).
    await db.transaction((trx) => data.moveKeptAndDrop(trx, p.name, keep));
    out.expiredRows += total - kept;
    out.expiredPartitions++;
    ctx.onProgress?.();
    pause = (performance.now() - dayStarted) * (ctx.pauseFactor ?? 0);
  }
  // Rows kept earlier (default partition) that are now billed and past the period.
  out.expiredRows += await deleteInBatches(ctx, (limit) => data.deleteRetainedUsageBatch(db, cutoff, limit));
  addKept(out, await data.retainedUsageKeptByReason(db, cutoff));
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
      await db.transaction((trx) => data.detachPartition(trx, table));
      return;
    } catch (err) {
      if ((err as { code?: string }).code !== '55P03' || attempt >= 50) throw err; // lock_not_available
      await new Promise((r) => setTimeout(r, Math.min(2_000, 50 * attempt)));
    }
  }
}

/** Source IP truncated (/24, /48) and User-Agent removed, in batches, on events older than the cutoff. */
export async function minimiseNetworkFields(ctx: ExpiryContext, cutoff: Date): Promise<CategoryOutcome> {
  const out = blankOutcome('usage_events.network', cutoff);
  out.expiredRows = await deleteInBatches(ctx, (limit) => data.minimiseNetworkBatch(ctx.db, cutoff, limit));
  out.keptHold = await data.heldUnminimised(ctx.db, cutoff);
  return out;
}

export async function expireRows(ctx: ExpiryContext, policy: Policy, cutoff: Date): Promise<CategoryOutcome> {
  const out = blankOutcome(policy.category, cutoff);
  const { db } = ctx;
  switch (policy.category) {
    case 'security_events':
      out.expiredRows = await deleteInBatches(ctx, (limit) => data.deleteSecurityEventsBatch(db, cutoff, limit));
      out.keptHold = await data.heldSecurityEvents(db, cutoff);
      break;
    case 'login_records':
      // The category covers the customer console's sessions too (same period and basis).
      out.expiredRows = await deleteInBatches(ctx, (limit) => data.deleteLoginRecordsBatch(db, cutoff, limit));
      out.expiredRows += await deleteInBatches(ctx, (limit) => data.deleteCustomerSessionsBatch(db, cutoff, limit));
      out.expiredRows += await deleteInBatches(ctx, (limit) => data.deleteCustomerLoginLinksBatch(db, cutoff, limit));
      out.keptHold = (await data.heldLoginRecords(db, cutoff)) + (await data.heldCustomerSessions(db, cutoff)) + (await data.heldCustomerLoginLinks(db, cutoff));
      break;
    case 'notification_outbox':
      out.expiredRows = await deleteInBatches(ctx, (limit) => data.deleteSentNotificationsBatch(db, cutoff, limit));
      // The category covers the customer console's invitations too (same period and basis).
      out.expiredRows += await deleteInBatches(ctx, (limit) => data.deleteEndedInvitationsBatch(db, cutoff, limit));
      out.keptHold = await data.heldEndedInvitations(db, cutoff);
      break;
    case 'page_view_counts':
      out.expiredRows = await deleteInBatches(ctx, (limit) => data.deletePageViewCountsBatch(db, cutoff, limit));
      break;
    case 'dsr_packages':
      out.expiredRows = await data.expirePackages(db, ctx.now, cutoff);
      break;
    case 'dsr_requests': {
      const ids = await data.closedRequestIds(db, cutoff);
      for (let i = 0; i < ids.length; i += ctx.batchSize) {
        const chunk = ids.slice(i, i + ctx.batchSize);
        await db.transaction(async (trx) => {
          await data.allowRetentionDeletes(trx);
          await data.deleteRequests(trx, chunk);
        });
        out.expiredRows += chunk.length;
        ctx.onProgress?.();
      }
      break;
    }
    case 'closed_accounts': {
      for (const id of await data.closedAccountsToErase(db, cutoff)) {
        out.expiredRows += await data.eraseClosedAccount(db, id);
        ctx.onProgress?.();
      }
      out.keptHold = await data.heldClosedAccounts(db, cutoff);
      break;
    }
    case 'invoices':
      await expireInvoices(ctx, cutoff, out);
      await finishKeptRecords(ctx, ['invoices', 'tax_data']);
      break;
    case 'payments':
      out.expiredRows = await deleteInBatches(ctx, (limit) => data.deletePaymentsBatch(db, cutoff, limit));
      out.keptHold = await data.heldPayments(db, cutoff);
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
      await data.allowRetentionDeletes(trx);
      const ids = await data.invoicesToExpire(trx, cutoff, ctx.batchSize);
      if (!ids.length) return 0;
      await data.deleteInvoices(trx, ids);
      return ids.length;
    });
    out.expiredRows += n;
    ctx.onProgress?.();
    if (n < ctx.batchSize) break;
  }
  out.keptHold = await data.heldInvoices(db, cutoff);
  out.keptOther = await data.keptInvoices(db, cutoff);
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
  for (const accountId of await data.ledgerAccountsToExpire(db, cutoff)) {
    out.expiredRows += await db.transaction(async (trx) => {
      await data.allowRetentionDeletes(trx);
      await lockBalances(trx, [accountId]);
      return data.carryForward(trx, accountId, cutoff);
    });
    ctx.onProgress?.();
  }
  out.keptHold = await data.heldLedgerEntries(db, cutoff);
}

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
    for (const k of await data.keptRecordsDue(ctx.db, category)) {
      await ctx.db.transaction((trx) => data.closeKeptRecord(trx, k, category));
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
  const out = blankOutcome('usage_events.erased_subjects', cutoff);
  // Nearly every day there is nothing to do: do not let the planner near the events table then.
  if (!(await data.erasedSubjectsUsageWaits(ctx.db))) return out;
  out.expiredRows = await deleteInBatches(ctx, (limit) => data.deleteErasedSubjectsUsageBatch(ctx.db, cutoff, limit));
  addKept(out, await data.erasedSubjectsUsageKeptByReason(ctx.db, cutoff));
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
