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
}

export type NewApiKey = Pick<ApiKeyRow, 'account_id' | 'key_hash' | 'prefix'> &
  Partial<Pick<ApiKeyRow, 'user_id' | 'name' | 'rate_limit_rpm'>>;

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
    /** Revoking twice keeps the first revocation time. */
    async revoke(id: string, at: Date, trx: DbOrTrx = db): Promise<ApiKeyRow | undefined> {
      await trx('api_keys').where({ id }).whereNull('revoked_at').update({ revoked_at: at });
      return trx<ApiKeyRow>('api_keys').where({ id }).first();
    },
  };
}
