import type { DbOrTrx, Trx } from '../db/knex';
import { recordAccountEvent } from '../notifications/events.data';
import { paymentFacts } from './payments.data';
import { amountOutstanding } from './paymentStatus.rules';

/**
 * Suspension of an account for an unpaid invoice, and its reinstatement
 * (issue 23; docs/collections.md). A suspension is a row of
 * account_suspensions (who, why, when; at most one open per account and one
 * per invoice) and accounts.status = 'suspended' while it is open: the
 * gateway's key lookup reads the status, so every gateway instance refuses
 * the account's model calls within its key cache's TTL (at most 5 s).
 * Each function runs in the caller's transaction and records the account
 * event (emailed and delivered by webhook) in it.
 */

export interface SuspensionRow {
  id: string;
  account_id: string;
  invoice_id: string | null;
  reason: string;
  suspended_by: string;
  suspended_at: Date;
  reinstated_by: string | null;
  reinstated_at: Date | null;
  reinstate_reason: string | null;
}

/** The account's status ('active' | 'suspended' | 'closed'); undefined when there is no such account. */
export async function accountStatus(db: DbOrTrx, accountId: string): Promise<string | undefined> {
  const row = await db('accounts').where({ id: accountId }).first('status');
  return row?.status;
}

/** The account's open suspension, if any. */
export async function openSuspension(db: DbOrTrx, accountId: string): Promise<SuspensionRow | undefined> {
  return db('account_suspensions').where({ account_id: accountId }).whereNull('reinstated_at').first();
}

/** The account's suspensions, newest first (bounded). */
export async function suspensionsOf(db: DbOrTrx, accountId: string, limit = 50): Promise<SuspensionRow[]> {
  return db('account_suspensions').where({ account_id: accountId }).orderBy([{ column: 'suspended_at', order: 'desc' }, { column: 'id', order: 'desc' }]).limit(limit);
}

/**
 * Suspends the account, once: with `invoiceId`, once per invoice (a retried
 * dunning step finds its row); without, a staff decision. Nothing happens when
 * the account is already suspended (`suspended: false`, with the open row) or
 * closed. Returns the row in force.
 */
export async function suspendAccount(
  trx: Trx,
  s: { accountId: string; invoiceId: string | null; reason: string; actor: string; data?: Record<string, unknown> },
): Promise<{ suspended: boolean; suspension: SuspensionRow | undefined; eventId: string | null }> {
  // Serialises with reinstatement and with other suspensions of the account.
  const account = await trx('accounts').where({ id: s.accountId }).forUpdate().first('id', 'status');
  if (!account || account.status === 'closed') return { suspended: false, suspension: undefined, eventId: null };
  if (s.invoiceId) {
    const earlier = await trx('account_suspensions').where({ invoice_id: s.invoiceId }).first();
    if (earlier) return { suspended: false, suspension: earlier, eventId: null };
  }
  const open = await openSuspension(trx, s.accountId);
  if (open) return { suspended: false, suspension: open, eventId: null };
  const [row] = (await trx('account_suspensions')
    .insert({ account_id: s.accountId, invoice_id: s.invoiceId, reason: s.reason, suspended_by: s.actor })
    .returning('*')) as SuspensionRow[];
  await trx('accounts').where({ id: s.accountId }).update({ status: 'suspended', updated_at: trx.fn.now() });
  const [event] = await recordAccountEvent(trx, {
    accountId: s.accountId,
    type: 'account.suspended',
    dedupeKey: `account.suspended:${row!.id}`,
    data: { accountId: s.accountId, invoiceId: s.invoiceId, suspendedAt: row!.suspended_at.toISOString(), ...(s.data ?? {}) },
  });
  return { suspended: true, suspension: row, eventId: event?.id ?? null };
}

/** Ends the account's open suspension (if any) and makes it active again, with who and why. */
export async function reinstateAccount(trx: Trx, r: { accountId: string; actor: string; reason: string }): Promise<{ reinstated: boolean; suspension: SuspensionRow | undefined }> {
  await trx('accounts').where({ id: r.accountId }).forUpdate().first('id');
  const open = await openSuspension(trx, r.accountId);
  if (!open) return { reinstated: false, suspension: undefined };
  const [row] = (await trx('account_suspensions')
    .where({ id: open.id })
    .update({ reinstated_by: r.actor, reinstated_at: trx.fn.now(), reinstate_reason: r.reason })
    .returning('*')) as SuspensionRow[];
  await trx('accounts').where({ id: r.accountId, status: 'suspended' }).update({ status: 'active', updated_at: trx.fn.now() });
  await recordAccountEvent(trx, {
    accountId: r.accountId,
    type: 'account.reinstated',
    dedupeKey: `account.reinstated:${open.id}`,
    data: { accountId: r.accountId, invoiceId: open.invoice_id, reinstatedAt: row!.reinstated_at!.toISOString() },
  });
  return { reinstated: true, suspension: row };
}

/**
 * Reinstates the account when it was suspended for unpaid invoices and none
 * of them has anything outstanding any more (paid, credited or void; a
 * written-off invoice still counts as unpaid: reinstating after a write-off is
 * a staff decision). A suspension staff made by hand (no invoice) is lifted by
 * staff only. Call it in the transaction that applied a payment or a credit note.
 */
export async function reinstateIfSettled(trx: Trx, accountId: string, actor: string): Promise<boolean> {
  const open = await openSuspension(trx, accountId);
  if (!open?.invoice_id) return false;
  // Every invoice of the account whose dunning reached its suspension step, and the one named.
  const invoices = (await trx('invoices')
    .where({ account_id: accountId, kind: 'invoice' })
    .whereIn('status', ['finalized', 'void'])
    .where((q) => q.where('id', open.invoice_id!).orWhereIn('id', trx('dunning_steps').select('invoice_id').where({ account_id: accountId, outcome: 'suspended' })))
    .select('id', 'status', 'amount_due', 'currency')) as { id: string; status: string; amount_due: string; currency: string }[];
  const facts = await paymentFacts(trx, invoices.map((i) => i.id));
  const unpaid = invoices.some((i) => {
    if (i.status === 'void') return false;
    const f = facts.get(i.id)!;
    return !amountOutstanding(i.amount_due, f.credited, f.paid, i.currency).isZero();
  });
  if (unpaid) return false;
  return (await reinstateAccount(trx, { accountId, actor, reason: 'the unpaid invoices were paid' })).reinstated;
}
