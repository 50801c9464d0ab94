import type { DbOrTrx } from '../db/knex';

/**
 * The demo's look-ups: what of the demo is there already. Each one reads the table of the domain that owns it;
 * everything the demo creates goes through that domain's service (src/demo/demo.service.ts).
 */

/** Holds the demo's lock until `trx` ends: two `mixroute dev` runs do not set the demo up twice. */
export async function lockDemo(trx: DbOrTrx, lock: string): Promise<void> {
  await trx.raw('SELECT pg_advisory_xact_lock(hashtext(?))', [lock]);
}

export async function providerByName(db: DbOrTrx, name: string): Promise<{ id: string; base_url: string } | undefined> {
  return db('providers').where({ name }).first('id', 'base_url');
}

export async function providerExists(db: DbOrTrx, name: string): Promise<boolean> {
  return !!(await db('providers').where({ name }).first('id'));
}

/** Accounts and providers together: zero on a fresh database. */
export async function countAccountsAndProviders(db: DbOrTrx): Promise<number> {
  const [{ n }] = (await db.raw('SELECT (SELECT count(*) FROM accounts) + (SELECT count(*) FROM providers) AS n')).rows as [{ n: string }];
  return Number(n);
}

/** The demo provider's row is the demo's own: its address follows DEV_DEMO_PROVIDER_PORT. */
export async function setProviderBaseUrl(db: DbOrTrx, id: string, baseUrl: string): Promise<void> {
  await db('providers').where({ id }).update({ base_url: baseUrl });
}

export async function modelExists(db: DbOrTrx, publicName: string): Promise<boolean> {
  return !!(await db('models').where({ public_name: publicName }).first('id'));
}

export async function userByEmail(db: DbOrTrx, email: string): Promise<{ id: string; account_id: string } | undefined> {
  return db('users').where({ email }).first('id', 'account_id');
}

export async function hasGrant(db: DbOrTrx, accountId: string): Promise<boolean> {
  return !!(await db('ledger_entries').where({ account_id: accountId, kind: 'grant' }).first('id'));
}

/** The display prefix of one of the account's active keys, if it has one. */
export async function activeKeyPrefix(db: DbOrTrx, accountId: string): Promise<string | undefined> {
  const key = await db('api_keys').where({ account_id: accountId }).whereNull('revoked_at').first('prefix');
  return key?.prefix;
}

/** `email` lower-case already. */
export async function staffUserExists(db: DbOrTrx, email: string): Promise<boolean> {
  return !!(await db('staff_users').whereRaw('lower(email) = ?', [email]).first('id'));
}
