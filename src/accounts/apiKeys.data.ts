import { ValidationError } from '../errors';
import type { DbOrTrx } from '../db/knex';

export interface ApiKeyRow {
  id: string;
  account_id: string;
  user_id: string | null;
  name: string | null;
  key_hash: string;
  prefix: string;
  rate_limit_rpm: number | null;
  created_at: Date;
  revoked_at: Date | null;
  /** `inference` keys make model calls; `management` keys manage the account's keys and make none. */
  kind: 'inference' | 'management';
  expires_at: Date | null;
  /** NUMERIC as a string; null: no spend limit. */
  spend_limit: string | null;
  limit_window: 'daily' | 'weekly' | 'monthly' | null;
  limit_alert_percents: number[];
}

export type NewApiKey = Pick<ApiKeyRow, 'account_id' | 'key_hash' | 'prefix'> &
  Partial<Pick<ApiKeyRow, 'user_id' | 'name' | 'rate_limit_rpm' | 'kind' | 'expires_at' | 'spend_limit' | 'limit_window' | 'limit_alert_percents'>>;

/** What the account (or staff) may change on an existing key. */
export type ApiKeyChanges = Partial<Pick<ApiKeyRow, 'name' | 'rate_limit_rpm' | 'expires_at' | 'spend_limit' | 'limit_window' | 'limit_alert_percents'>>;

export function apiKeysRepo(db: DbOrTrx) {
  return {
    async insert(key: NewApiKey, trx: DbOrTrx = db): Promise<ApiKeyRow> {
      const [row] = await trx<ApiKeyRow>('api_keys').insert(key).returning('*');
      return row!;
    },
    async findById(id: string, trx: DbOrTrx = db): Promise<ApiKeyRow | undefined> {
      return trx<ApiKeyRow>('api_keys').where({ id }).first();
    },
    /** The gateway's authentication lookup: by hash, active keys only. */
    async findActiveByHash(keyHash: string, trx: DbOrTrx = db): Promise<ApiKeyRow | undefined> {
      return trx<ApiKeyRow>('api_keys').where({ key_hash: keyHash }).whereNull('revoked_at').first();
    },
    /** A page of an account's keys in creation order; `after` is the last key id of the previous page. */
    async listByAccount(accountId: string, page: { limit: number; after?: string }, trx: DbOrTrx = db): Promise<ApiKeyRow[]> {
      const q = trx<ApiKeyRow>('api_keys').where({ account_id: accountId }).orderBy([{ column: 'created_at' }, { column: 'id' }]).limit(page.limit);
      if (page.after) {
        // Only a key of this account: another's would place the page by its creation time, and a missing one would end it early.
        const cursor = await trx<ApiKeyRow>('api_keys').where({ id: page.after, account_id: accountId }).first('id');
        if (!cursor) throw new ValidationError('after: no such key on this account', [{ field: 'after', message: "must be the id of the last key of the previous page of this account's keys" }]);
        q.whereRaw('(created_at, id) > (SELECT created_at, id FROM api_keys WHERE id = ?)', [cursor.id]);
      }
      return q;
    },
    /** One key of one account: another account's key is not found, as if it did not exist. */
    async findInAccount(accountId: string, id: string, trx: DbOrTrx = db): Promise<ApiKeyRow | undefined> {
      return trx<ApiKeyRow>('api_keys').where({ id, account_id: accountId }).first();
    },
    /** Serialises key creation per account (until the transaction ends), so concurrent creates cannot pass the key cap together. */
    async lockAccountKeys(accountId: string, trx: DbOrTrx): Promise<void> {
      await trx.raw('SELECT pg_advisory_xact_lock(hashtext(?))', [`api_keys:${accountId}`]);
    },
    /** Active (not revoked) keys of an account; the caller bounds how many there may be, so this counts a bounded set. */
    async countActiveByAccount(accountId: string, trx: DbOrTrx = db): Promise<number> {
      const row = await trx('api_keys').where({ account_id: accountId }).whereNull('revoked_at').count<{ n: string }[]>({ n: '*' }).first();
      return Number(row?.n ?? 0);
    },
    /** Changes an active key of the account; undefined when there is none (revoked keys stay as they were). */
    async update(accountId: string, id: string, changes: ApiKeyChanges, trx: DbOrTrx = db): Promise<ApiKeyRow | undefined> {
      const [row] = await trx<ApiKeyRow>('api_keys').where({ id, account_id: accountId }).whereNull('revoked_at').update(changes).returning('*');
      return row;
    },
    /** Revoking twice keeps the first revocation time. */
    async revoke(id: string, at: Date, trx: DbOrTrx = db): Promise<ApiKeyRow | undefined> {
      await trx('api_keys').where({ id }).whereNull('revoked_at').update({ revoked_at: at });
      return trx<ApiKeyRow>('api_keys').where({ id }).first();
    },
  };
}
