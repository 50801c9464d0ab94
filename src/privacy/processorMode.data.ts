import { claimOutboxEmail, markOutboxEmailSent } from '../notify/outbox.data';
import type { Db, DbOrTrx, Trx } from '../db/knex';

/** Processor-mode requests: the customer's privacy contact, requests, forwards (migrations/20261205000200_processor_mode.ts). */

export async function accountExists(db: DbOrTrx, id: string): Promise<boolean> {
  return !!(await db('accounts').where({ id }).first('id'));
}

/** Sets the contact and appends the change (before and after) to its history, in one transaction; the account row is locked so changes are serial. */
export async function upsertContact(trx: Trx, row: { account_id: string; email: string; set_by: string; reason: string; set_at: Date }) {
  await lockAccount(trx, row.account_id);
  const before = await trx('account_privacy_contacts').where({ account_id: row.account_id }).first('email');
  await trx('account_privacy_contacts').insert(row).onConflict('account_id').merge(['email', 'set_by', 'reason', 'set_at']);
  await trx('account_privacy_contact_changes').insert({
    account_id: row.account_id,
    email_before: before?.email ?? null,
    email_after: row.email,
    changed_by: row.set_by,
    reason: row.reason,
    changed_at: row.set_at,
  });
}

/** The contact's changes, newest first. */
export async function contactChanges(db: DbOrTrx, accountId: string, limit: number) {
  return db('account_privacy_contact_changes').where({ account_id: accountId }).orderBy('id', 'desc').limit(limit);
}

export async function contactOf(db: DbOrTrx, accountId: string) {
  return db('account_privacy_contacts').where({ account_id: accountId }).first();
}

/** The account the person named: by id, or by its exact name (one match only; several or none find nothing). */
export async function findNamedAccount(db: DbOrTrx, by: { id?: string; name?: string }): Promise<{ id: string; name: string; contact: string | null } | null> {
  const q = db('accounts as a').leftJoin('account_privacy_contacts as c', 'c.account_id', 'a.id').select('a.id', 'a.name', 'c.email as contact').limit(2);
  if (by.id) q.where('a.id', by.id);
  else if (by.name) q.where('a.name', by.name);
  else return null;
  const rows = await q;
  return rows.length === 1 ? { id: rows[0].id, name: rows[0].name, contact: rows[0].contact ?? null } : null;
}

/** Serialises forwards to one account, so two filings cannot both pass the open-forward check. */
export async function lockAccount(trx: Trx, id: string) {
  await trx('accounts').where({ id }).forUpdate().first('id');
}

export async function openForwardFor(trx: Trx, accountId: string, email: string, type: string, now: Date): Promise<boolean> {
  return !!(await trx('processor_forwards as f')
    .join('processor_requests as r', 'r.id', 'f.request_id')
    .where('f.account_id', accountId)
    .whereRaw('lower(r.subject_email) = lower(?)', [email])
    .where('r.type', type)
    .whereNull('f.closed_at')
    .where('f.due_at', '>', now)
    .first('f.request_id'));
}

export async function insertRequest(trx: Trx, row: Record<string, unknown>): Promise<{ id: string }> {
  const [r] = await trx('processor_requests').insert(row).returning(['id']);
  return r;
}

export async function insertForward(trx: Trx, row: { request_id: string; account_id: string; forwarded_to: string; forwarded_at: Date; due_at: Date }) {
  await trx('processor_forwards').insert(row);
}

const REQUEST_COLUMNS = ['r.*', 'f.forwarded_to', 'f.forwarded_at', 'f.due_at', 'f.closed_at', 'f.closed_by', 'f.close_reason'];

/** Newest first; `overdueAt`: only forwards due by then and not closed (their deadline order, oldest first). */
export async function listRequests(db: Db, opts: { outcome?: string; overdueAt?: Date; limit: number }) {
  const q = db('processor_requests as r').leftJoin('processor_forwards as f', 'f.request_id', 'r.id').select(REQUEST_COLUMNS).limit(opts.limit);
  if (opts.outcome) q.where('r.outcome', opts.outcome);
  if (opts.overdueAt) q.whereNotNull('f.due_at').whereNull('f.closed_at').where('f.due_at', '<=', opts.overdueAt).orderBy('f.due_at', 'asc');
  else q.orderBy('r.received_at', 'desc');
  return q;
}

export async function requestById(db: DbOrTrx, id: string) {
  return db('processor_requests as r').leftJoin('processor_forwards as f', 'f.request_id', 'r.id').where('r.id', id).first(REQUEST_COLUMNS);
}

export async function forwardForUpdate(trx: Trx, requestId: string) {
  return trx('processor_forwards').where({ request_id: requestId }).forUpdate().first();
}

/** Closes an open forward; false when it was closed already. */
export async function closeForward(trx: Trx, requestId: string, close: { closed_at: Date; closed_by: string; close_reason: string }): Promise<boolean> {
  return (await trx('processor_forwards').where({ request_id: requestId }).whereNull('closed_at').update(close)) === 1;
}

/**
 * Takes one queued processor-mode email not sent yet (oldest first), locked
 * for the caller's transaction and skipped by any other sender meanwhile:
 * only keys `processor:%`, never another outbox message. `keys` narrows it to
 * those messages; `queuedBefore` to messages queued before then.
 */
export const claimPendingEmail = (trx: Trx, opts: { keys?: readonly string[]; queuedBefore?: Date }) => claimOutboxEmail(trx, 'processor:', opts);

/** Marks a message sent, its body cleared as for every outbox message. */
export const markEmailSent = (trx: Trx, id: string) => markOutboxEmailSent(trx, id);
