import type { Db } from '../db/knex';
import type { Caller } from './keyCache';

/** The gateway's authentication lookup: an active key of an active account, by the key's hash; null when none. */
export async function callerByKeyHash(db: Db, hash: string): Promise<Caller | null> {
  const row = await db('api_keys')
    .join('accounts', 'accounts.id', 'api_keys.account_id')
    .where('api_keys.key_hash', hash)
    .whereNull('api_keys.revoked_at')
    .where('accounts.status', 'active')
    .first('api_keys.id', 'api_keys.account_id', 'api_keys.user_id', 'api_keys.rate_limit_rpm', 'accounts.plan');
  if (!row) return null;
  return { apiKeyId: row.id, accountId: row.account_id, userId: row.user_id, rateLimitRpm: row.rate_limit_rpm, prepaid: row.plan !== 'postpaid' };
}
