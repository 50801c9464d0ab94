import type { Db } from '../db/knex';

/** account_region_policies as stored: the allowed countries (ISO 3166-1 alpha-2) and the name messages use. */
export interface RegionPolicyRow {
  account_id: string;
  allowed_countries: string[];
  label: string | null;
  updated_at: Date;
}

/** One audited change of a policy (register_changes, entity_type 'account_region_policy'). */
export interface RegionPolicyChangeRow {
  id: string;
  action: 'created' | 'updated' | 'deleted';
  actor: string;
  reason: string;
  before: { allowedCountries: string[]; label: string | null } | null;
  after: { allowedCountries: string[]; label: string | null } | null;
  changed_at: Date;
}

const ENTITY = 'account_region_policy';

/** The account's status, locked until the transaction ends so changes of one account's policy run one at a time; undefined: no such account. */
export async function lockAccount(db: Db, accountId: string): Promise<string | undefined> {
  const row = await db('accounts').where({ id: accountId }).forUpdate().first('status');
  return row?.status as string | undefined;
}

export async function accountStatus(db: Db, accountId: string): Promise<string | undefined> {
  const row = await db('accounts').where({ id: accountId }).first('status');
  return row?.status as string | undefined;
}

export async function regionPolicyOf(db: Db, accountId: string): Promise<RegionPolicyRow | undefined> {
  return db('account_region_policies').where({ account_id: accountId }).first('*');
}

/** The last `limit` changes of the account's policy, newest first. */
export async function regionPolicyChanges(db: Db, accountId: string, limit = 20): Promise<RegionPolicyChangeRow[]> {
  return db('register_changes')
    .where({ entity_type: ENTITY, entity_id: accountId })
    .orderBy([{ column: 'changed_at', order: 'desc' }, { column: 'id', order: 'desc' }])
    .limit(limit)
    .select('id', 'action', 'actor', 'reason', 'before', 'after', 'changed_at');
}

const snapshot = (r: RegionPolicyRow | undefined) => (r ? { allowedCountries: r.allowed_countries, label: r.label } : null);

/**
 * Sets the policy and records the change with who and why, in the caller's
 * transaction (with the account locked by lockAccount). Unchanged: nothing is
 * written and `changed` is false.
 */
export async function setRegionPolicy(
  trx: Db,
  input: { accountId: string; allowedCountries: string[]; label: string | null; actor: string; reason: string },
): Promise<{ changed: boolean; policy: RegionPolicyRow }> {
  const before = await regionPolicyOf(trx, input.accountId);
  if (before && before.label === input.label && before.allowed_countries.join(',') === input.allowedCountries.join(',')) return { changed: false, policy: before };
  const [policy] = (await trx('account_region_policies')
    .insert({ account_id: input.accountId, allowed_countries: input.allowedCountries, label: input.label, updated_at: trx.fn.now() })
    .onConflict('account_id')
    .merge(['allowed_countries', 'label', 'updated_at'])
    .returning('*')) as RegionPolicyRow[];
  await trx('register_changes').insert({
    entity_type: ENTITY,
    entity_id: input.accountId,
    action: before ? 'updated' : 'created',
    actor: input.actor,
    reason: input.reason,
    before: before ? JSON.stringify(snapshot(before)) : null,
    after: JSON.stringify(snapshot(policy)),
  });
  return { changed: true, policy: policy! };
}

/** Removes the policy and records it, in the caller's transaction; no policy: nothing is written and `cleared` is false. */
export async function clearRegionPolicy(trx: Db, input: { accountId: string; actor: string; reason: string }): Promise<{ cleared: boolean }> {
  const before = await regionPolicyOf(trx, input.accountId);
  if (!before) return { cleared: false };
  await trx('account_region_policies').where({ account_id: input.accountId }).delete();
  await trx('register_changes').insert({
    entity_type: ENTITY,
    entity_id: input.accountId,
    action: 'deleted',
    actor: input.actor,
    reason: input.reason,
    before: JSON.stringify(snapshot(before)),
    after: null,
  });
  return { cleared: true };
}
