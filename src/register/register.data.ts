import type { Db, DbOrTrx, Trx } from '../db/knex';

/**
 * Queries of the processing register: processing activities, recipients, the
 * providers they describe, and the change log (register_changes). The service
 * wraps each change and its log row in one transaction.
 */

export interface ActivityRow {
  id: string;
  key: string;
  purpose: string;
  legal_basis: string;
  data_subject_categories: string[];
  data_categories: string[];
  systems: string[];
  retention_category: string | null;
  recipient_kinds: string[] | null;
  created_at: Date;
  updated_at: Date;
}

export interface RecipientRow {
  id: string;
  name: string;
  kind: string;
  provider_id: string | null;
  role: string | null;
  countries: string[];
  transfer_mechanism: string | null;
  scc_date: string | null;
  transfer_note: string | null;
  agreement_ref: string | null;
  agreement_signed_on: string | null;
  created_at: Date;
  updated_at: Date;
}

export interface ChangeRow {
  id: string;
  entity_type: string;
  entity_id: string;
  action: string;
  actor: string;
  reason: string;
  before: unknown;
  after: unknown;
  changed_at: Date;
}

// Dates come back as 'YYYY-MM-DD' text, not a Date at local midnight.
const RECIPIENT_COLUMNS = [
  'id', 'name', 'kind', 'provider_id', 'role', 'countries', 'transfer_mechanism',
  'transfer_note', 'agreement_ref', 'created_at', 'updated_at',
] as const;
const recipientSelect = (db: DbOrTrx) => [
  ...RECIPIENT_COLUMNS.map((c) => `recipients.${c}`),
  db.raw(`to_char(recipients.scc_date, 'YYYY-MM-DD') AS scc_date`),
  db.raw(`to_char(recipients.agreement_signed_on, 'YYYY-MM-DD') AS agreement_signed_on`),
];

export const listActivities = (db: DbOrTrx): Promise<ActivityRow[]> => db('processing_activities').select('*').orderBy('key');

export const findActivity = (db: DbOrTrx, id: string, lock = false): Promise<ActivityRow | undefined> => {
  const q = db('processing_activities').where({ id }).first('*');
  return lock ? q.forUpdate() : q;
};

export async function insertActivity(trx: Trx, row: Omit<ActivityRow, 'id' | 'created_at' | 'updated_at'>): Promise<ActivityRow> {
  const [r] = await trx('processing_activities').insert(row).returning('*');
  return r as ActivityRow;
}

export async function updateActivity(trx: Trx, id: string, patch: Partial<ActivityRow>, now: Date): Promise<ActivityRow> {
  const [r] = await trx('processing_activities').where({ id }).update({ ...patch, updated_at: now }).returning('*');
  return r as ActivityRow;
}

export const retentionCategoryExists = async (db: DbOrTrx, category: string): Promise<boolean> =>
  !!(await db('retention_policies').where({ category }).first('category'));

export const listRecipients = (db: DbOrTrx): Promise<RecipientRow[]> => db('recipients').select(recipientSelect(db)).orderBy('name');

export const findRecipient = (db: DbOrTrx, id: string, lock = false): Promise<RecipientRow | undefined> => {
  const q = db('recipients').where({ id }).first(recipientSelect(db));
  return lock ? q.forUpdate() : q;
};

export async function insertRecipient(trx: Trx, row: Partial<RecipientRow>): Promise<RecipientRow> {
  const [{ id }] = await trx('recipients').insert(row).returning('id');
  return (await findRecipient(trx, id as string))!;
}

export async function updateRecipient(trx: Trx, id: string, patch: Partial<RecipientRow>, now: Date): Promise<RecipientRow> {
  await trx('recipients').where({ id }).update({ ...patch, updated_at: now });
  return (await findRecipient(trx, id))!;
}

/** A provider by id or by name. */
export const findProvider = (db: DbOrTrx, ref: { id?: string; name?: string }): Promise<{ id: string; name: string } | undefined> =>
  db('providers').where(ref.id ? { id: ref.id } : { name: ref.name }).first('id', 'name');

/** Every provider with its recipient entry, if any (the entry's columns are null when there is none). */
export const providersWithRecipients = (db: DbOrTrx): Promise<(RecipientRow & { provider_name: string; pid: string; has_entry: boolean })[]> =>
  db('providers')
    .leftJoin('recipients', 'recipients.provider_id', 'providers.id')
    .select([...recipientSelect(db), 'providers.id as pid', 'providers.name as provider_name', db.raw('recipients.id IS NOT NULL AS has_entry')])
    .orderBy('providers.name');

export async function insertChange(
  trx: Trx,
  c: { entityType: 'processing_activity' | 'recipient'; entityId: string; action: 'created' | 'updated'; actor: string; reason: string; before: unknown; after: unknown; at: Date },
): Promise<string> {
  const [{ id }] = await trx('register_changes').insert({
    entity_type: c.entityType,
    entity_id: c.entityId,
    action: c.action,
    actor: c.actor,
    reason: c.reason,
    // jsonb from text: knex would otherwise send a JS array as a PostgreSQL array.
    before: c.before === null ? null : JSON.stringify(c.before),
    after: c.after === null ? null : JSON.stringify(c.after),
    changed_at: c.at,
  }).returning('id');
  return String(id);
}

export function listChanges(db: Db, page: { limit: number; before?: string; entityId?: string }): Promise<ChangeRow[]> {
  const q = db('register_changes').select('*').orderBy('id', 'desc').limit(page.limit);
  if (page.before) q.where('id', '<', page.before);
  if (page.entityId) q.where({ entity_id: page.entityId });
  return q;
}
