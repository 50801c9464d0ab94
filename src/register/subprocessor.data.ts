import type { Db, DbOrTrx, Trx } from '../db/knex';
import type { NoticeStatus, SubprocessorChangeKind } from './subprocessor.rules';

/**
 * Queries of sub-processor changes (docs/processing-register.md#sub-processor-changes):
 * data-processing agreements, the changes, and each agreement account's
 * notice. Holding a recipient back is a notice row in a holding status; the
 * gateway reads those with the key (src/gateway/keys.data.ts).
 */

export interface AgreementRow {
  account_id: string;
  agreement_ref: string;
  signed_on: string;
  set_by: string;
  reason: string;
  set_at: Date;
}

export interface SubprocessorChangeRow {
  id: string;
  register_change_id: string;
  recipient_id: string;
  recipient_name: string;
  recipient_kind: string;
  kind: SubprocessorChangeKind;
  countries: string[];
  notice_period_ms: string;
  announced_at: Date;
  effective_at: Date;
  ended_at: Date | null;
}

export interface NoticeRow {
  change_id: string;
  account_id: string;
  status: NoticeStatus;
  notified_at: Date | null;
  decided_by: string | null;
  decided_at: Date | null;
}

export const findAgreement = (db: DbOrTrx, accountId: string): Promise<AgreementRow | undefined> =>
  db('account_processing_agreements').where({ account_id: accountId }).first('account_id', 'agreement_ref', db.raw(`to_char(signed_on, 'YYYY-MM-DD') AS signed_on`), 'set_by', 'reason', 'set_at');

export async function upsertAgreement(trx: Trx, row: Omit<AgreementRow, 'set_at'> & { set_at: Date }): Promise<void> {
  await trx('account_processing_agreements').insert(row).onConflict('account_id').merge();
}

export const accountExists = async (db: DbOrTrx, accountId: string): Promise<boolean> => !!(await db('accounts').where({ id: accountId }).first('id'));

/**
 * The change and a pending notice for every account that has an agreement
 * now, in two statements whatever their number. Returns the change and how
 * many accounts it holds back.
 */
export async function insertChangeWithNotices(
  trx: Trx,
  c: { registerChangeId: string; recipientId: string; kind: SubprocessorChangeKind; countries: string[]; noticePeriodMs: number; announcedAt: Date; effectiveAt: Date },
): Promise<{ id: string; accounts: number }> {
  const [{ id }] = await trx('subprocessor_changes')
    .insert({
      register_change_id: c.registerChangeId,
      recipient_id: c.recipientId,
      kind: c.kind,
      countries: c.countries,
      notice_period_ms: c.noticePeriodMs,
      announced_at: c.announcedAt,
      effective_at: c.effectiveAt,
    })
    .returning('id');
  const { rowCount } = (await trx.raw(
    `INSERT INTO subprocessor_notices (change_id, account_id) SELECT ?, account_id FROM account_processing_agreements ON CONFLICT DO NOTHING`,
    [id],
  )) as { rowCount: number };
  return { id: String(id), accounts: rowCount };
}

const changeSelect = (db: DbOrTrx) => [
  'c.id', 'c.register_change_id', 'c.recipient_id', 'r.name as recipient_name', 'r.kind as recipient_kind', 'c.kind', 'c.countries',
  db.raw('c.notice_period_ms::text AS notice_period_ms'), 'c.announced_at', 'c.effective_at', 'c.ended_at',
];

export const findChange = (db: DbOrTrx, id: string): Promise<SubprocessorChangeRow | undefined> =>
  db('subprocessor_changes as c').join('recipients as r', 'r.id', 'c.recipient_id').where('c.id', id).first(changeSelect(db));

/** Newest first; `before` is the announced_at of the previous page's last row. */
export function listChanges(db: DbOrTrx, page: { limit: number; open?: boolean }): Promise<SubprocessorChangeRow[]> {
  const q = db('subprocessor_changes as c').join('recipients as r', 'r.id', 'c.recipient_id').select(changeSelect(db)).orderBy('c.announced_at', 'desc').orderBy('c.id').limit(page.limit);
  if (page.open) q.whereNull('c.ended_at');
  return q;
}

/** Changes whose period has not been ended by their workflow. */
export const openChangeIds = async (db: DbOrTrx, limit: number): Promise<string[]> =>
  (await db('subprocessor_changes').whereNull('ended_at').orderBy('announced_at').limit(limit).pluck('id')).map(String);

/** How many notices of a change are in each status. */
export async function noticeCounts(db: DbOrTrx, changeId: string): Promise<Record<NoticeStatus, number>> {
  const rows = (await db('subprocessor_notices').where({ change_id: changeId }).groupBy('status').select('status', db.raw('count(*)::int AS n'))) as { status: NoticeStatus; n: number }[];
  const out: Record<NoticeStatus, number> = { pending: 0, accepted: 0, objected: 0, effective: 0 };
  for (const r of rows) out[r.status] = r.n;
  return out;
}

/**
 * Accounts of a change's notices not yet sent, with where the notice goes:
 * the billing address (through the account event) and the privacy contact.
 */
export const unnotified = (db: DbOrTrx, changeId: string, limit: number): Promise<{ account_id: string; privacy_contact: string | null }[]> =>
  db('subprocessor_notices as n')
    .leftJoin('account_privacy_contacts as pc', 'pc.account_id', 'n.account_id')
    .where('n.change_id', changeId)
    .whereNull('n.notified_at')
    .orderBy('n.account_id')
    .limit(limit)
    .select('n.account_id', 'pc.email as privacy_contact');

export async function markNotified(trx: Trx, changeId: string, accountIds: string[], at: Date): Promise<void> {
  await trx('subprocessor_notices').where({ change_id: changeId }).whereIn('account_id', accountIds).whereNull('notified_at').update({ notified_at: at });
}

/** The period ran: pending notices take effect; accepted and objected ones stay as they are. */
export async function endChange(trx: Trx, changeId: string, at: Date): Promise<{ effective: number }> {
  const effective = await trx('subprocessor_notices').where({ change_id: changeId, status: 'pending' }).update({ status: 'effective' });
  await trx('subprocessor_changes').where({ id: changeId }).whereNull('ended_at').update({ ended_at: at });
  return { effective };
}

export const findNotice = (db: DbOrTrx, changeId: string, accountId: string, lock = false): Promise<NoticeRow | undefined> => {
  const q = db('subprocessor_notices').where({ change_id: changeId, account_id: accountId }).first('*');
  return lock ? q.forUpdate() : q;
};

export async function setNoticeStatus(trx: Trx, changeId: string, accountId: string, status: NoticeStatus, actor: string, at: Date): Promise<NoticeRow> {
  const [r] = await trx('subprocessor_notices').where({ change_id: changeId, account_id: accountId }).update({ status, decided_by: actor, decided_at: at }).returning('*');
  return r as NoticeRow;
}

/** An account's notices with their changes, newest first, bounded. */
export const noticesOfAccount = (db: DbOrTrx, accountId: string, limit: number): Promise<(NoticeRow & SubprocessorChangeRow)[]> =>
  db('subprocessor_notices as n')
    .join('subprocessor_changes as c', 'c.id', 'n.change_id')
    .join('recipients as r', 'r.id', 'c.recipient_id')
    .where('n.account_id', accountId)
    .orderBy('c.announced_at', 'desc')
    .limit(limit)
    .select([...changeSelect(db), 'n.change_id', 'n.account_id', 'n.status', 'n.notified_at', 'n.decided_by', 'n.decided_at']);

/** One notice of an account with its change. */
export const noticeOfAccount = (db: DbOrTrx, changeId: string, accountId: string): Promise<(NoticeRow & SubprocessorChangeRow) | undefined> =>
  db('subprocessor_notices as n')
    .join('subprocessor_changes as c', 'c.id', 'n.change_id')
    .join('recipients as r', 'r.id', 'c.recipient_id')
    .where({ 'n.account_id': accountId, 'n.change_id': changeId })
    .first([...changeSelect(db), 'n.change_id', 'n.account_id', 'n.status', 'n.notified_at', 'n.decided_by', 'n.decided_at']);

/** A change's notices, by account id, a page at a time (`after`: the last account id of the previous page). */
export function noticesOfChange(db: DbOrTrx, changeId: string, page: { limit: number; after?: string }): Promise<NoticeRow[]> {
  const q = db('subprocessor_notices').where({ change_id: changeId }).orderBy('account_id').limit(page.limit).select('*');
  if (page.after) q.where('account_id', '>', page.after);
  return q;
}

/** Queues the copy of a notice for the account's privacy contact; once per change and account (UNIQUE key). */
export async function queueContactCopy(trx: Trx, mails: { idempotency_key: string; recipient: string; subject: string; body: string }[]): Promise<void> {
  if (mails.length > 0) await trx('notification_outbox').insert(mails).onConflict('idempotency_key').ignore();
}

export type { Db };
