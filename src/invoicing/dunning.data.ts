import type { DbOrTrx, Trx } from '../db/knex';

/**
 * Dunning's statements (migration 20261204230000_dunning; docs/collections.md):
 * what the workflow of an invoice did at each step (dunning_steps, one row per
 * (invoice, step)) and staff pauses of an account's dunning (dunning_pauses, at
 * most one open per account).
 */

export interface DunningStepRow {
  invoice_id: string;
  step: string;
  account_id: string;
  kind: 'notice' | 'reminder' | 'suspension';
  due_at: Date;
  done_at: Date;
  outcome: 'sent' | 'suspended' | 'skipped_settled' | 'skipped_already_suspended';
  event_id: string | null;
}

export interface DunningPauseRow {
  id: string;
  account_id: string;
  reason: string;
  paused_by: string;
  paused_at: Date;
  resumed_by: string | null;
  resumed_at: Date | null;
}

/** The row of an invoice's step, if the step ran. */
export async function findDunningStep(db: DbOrTrx, invoiceId: string, step: string): Promise<DunningStepRow | undefined> {
  return db('dunning_steps').where({ invoice_id: invoiceId, step }).first();
}

/** Records what a step did (in the transaction that sent it). */
export async function insertDunningStep(trx: Trx, row: DunningStepRow): Promise<DunningStepRow> {
  const [r] = (await trx('dunning_steps').insert(row).returning('*')) as DunningStepRow[];
  return r!;
}

/** The steps that ran, for these invoices, by due time. */
export async function dunningStepsOf(db: DbOrTrx, invoiceIds: readonly string[]): Promise<DunningStepRow[]> {
  if (invoiceIds.length === 0) return [];
  return db('dunning_steps').whereIn('invoice_id', invoiceIds).orderBy([{ column: 'due_at' }, { column: 'step' }]);
}

/** The account's open pause, if any. */
export async function openDunningPause(db: DbOrTrx, accountId: string): Promise<DunningPauseRow | undefined> {
  return db('dunning_pauses').where({ account_id: accountId }).whereNull('resumed_at').first();
}

/** Opens a pause; a concurrent open one makes it return undefined (the partial unique index). */
export async function insertDunningPause(trx: Trx, row: { account_id: string; reason: string; paused_by: string; paused_at: Date }): Promise<DunningPauseRow | undefined> {
  const [r] = (await trx.raw(
    `INSERT INTO dunning_pauses (account_id, reason, paused_by, paused_at) VALUES (?, ?, ?, ?)
     ON CONFLICT (account_id) WHERE resumed_at IS NULL DO NOTHING RETURNING *`,
    [row.account_id, row.reason, row.paused_by, row.paused_at],
  )).rows as DunningPauseRow[];
  return r;
}

/** Closes the account's open pause, with who and when; undefined when none was open. */
export async function closeDunningPause(trx: Trx, accountId: string, by: string, at: Date): Promise<DunningPauseRow | undefined> {
  const [r] = (await trx('dunning_pauses').where({ account_id: accountId }).whereNull('resumed_at').update({ resumed_by: by, resumed_at: at }).returning('*')) as DunningPauseRow[];
  return r;
}

/** Locks the account row (serialises pauses and resumes of one account); undefined when it does not exist. */
export async function lockAccountForDunning(trx: Trx, accountId: string): Promise<{ id: string; plan: string } | undefined> {
  return trx('accounts').where({ id: accountId }).forUpdate().first('id', 'plan');
}

export async function accountExists(db: DbOrTrx, accountId: string): Promise<boolean> {
  return !!(await db('accounts').where({ id: accountId }).first('id'));
}

/** The id of the account event recorded under a dedupe key. */
export async function accountEventIdByKey(db: DbOrTrx, dedupeKey: string): Promise<string | null> {
  const r = await db('account_events').where({ dedupe_key: dedupeKey }).first('id');
  return (r?.id as string | undefined) ?? null;
}

export interface CollectableInvoiceRow {
  id: string;
  account_id: string;
  kind: string;
  plan: string;
  status: string;
  number: string | null;
  currency: string;
  amount_due: string;
  due_date: string | null;
  issued_at: Date | null;
}

const INVOICE_COLUMNS = ['id', 'account_id', 'kind', 'plan', 'status', 'number', 'currency', 'amount_due', 'due_date', 'issued_at'] as const;

/** One invoice's columns dunning reads. */
export async function collectableInvoice(db: DbOrTrx, invoiceId: string): Promise<CollectableInvoiceRow | undefined> {
  return db('invoices').where({ id: invoiceId }).first(...INVOICE_COLUMNS);
}

/** The account's latest finalized (or void) postpaid invoices with something due, newest first, at most `limit`. */
export async function collectableInvoicesOf(db: DbOrTrx, accountId: string, limit: number): Promise<CollectableInvoiceRow[]> {
  return db('invoices')
    .where({ account_id: accountId, kind: 'invoice', plan: 'postpaid' })
    .whereIn('status', ['finalized', 'void'])
    .where('amount_due', '>', 0)
    .orderBy([{ column: 'issued_at', order: 'desc' }, { column: 'id', order: 'desc' }])
    .limit(limit)
    .select(...INVOICE_COLUMNS);
}
