import type { Db, DbOrTrx, Trx } from '../db/knex';

/** Processor-mode requests: the customer's privacy contact, requests, forwards (migrations/20261205000200_processor_mode.ts). */

export async function accountExists(db: DbOrTrx, id: string): Promise<boolean> {
  return !!(await db('accounts').where({ id }).first('id'));
}

export async function upsertContact(trx: Trx, row: { account_id: string; email: string; set_by: string; reason: string; set_at: Date }) {
  await trx('account_privacy_contacts').insert(row).onConflict('account_id').merge(['email', 'set_by', 'reason', 'set_at']);
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

export async function listRequests(db: Db, opts: { outcome?: string; limit: number }) {
  const q = db('processor_requests as r')
    .leftJoin('processor_forwards as f', 'f.request_id', 'r.id')
    .select('r.*', 'f.forwarded_to', 'f.forwarded_at', 'f.due_at', 'f.closed_at')
    .orderBy('r.received_at', 'desc')
    .limit(opts.limit);
  if (opts.outcome) q.where('r.outcome', opts.outcome);
  return q;
}

/** Queued processor-mode emails not sent yet, oldest first. */
export async function pendingEmails(db: Db, limit: number, keys?: readonly string[]) {
  const q = db('notification_outbox')
    .whereNull('sent_at')
    .whereRaw(`idempotency_key LIKE 'processor:%'`)
    .orderBy('id')
    .limit(limit)
    .select(db.raw('id::text AS id'), 'idempotency_key', 'recipient', 'subject', 'body');
  if (keys) q.whereIn('idempotency_key', keys);
  return q;
}

/** Marks a message sent, its body cleared as for every outbox message. */
export async function markEmailSent(db: Db, id: string) {
  await db('notification_outbox').where({ id }).whereNull('sent_at').update({ sent_at: db.fn.now(), body: '' });
}
