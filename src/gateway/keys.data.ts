import type { Db } from '../db/knex';
import type { Caller } from './keyCache';

/**
 * The gateway's authentication lookup: an unrevoked key of an active or suspended account, by the key's hash;
 * null when none (a closed account's keys are invalid). A suspended account's key authenticates with
 * `suspended: true`: its model calls are refused with their own code, its account endpoints answer.
 * Expired keys are returned with their expiry: the key cache decides expiry against its clock at each use.
 */
export async function callerByKeyHash(db: Db, hash: string): Promise<Caller | null> {
  const row = await db('api_keys')
    .join('accounts', 'accounts.id', 'api_keys.account_id')
    // The region policy comes with the key, so the cached Caller carries it (no query per request).
    .leftJoin('account_region_policies', 'account_region_policies.account_id', 'api_keys.account_id')
    .where('api_keys.key_hash', hash)
    .whereNull('api_keys.revoked_at')
    .whereIn('accounts.status', ['active', 'suspended'])
    .first(
      'api_keys.id',
      'api_keys.account_id',
      'api_keys.user_id',
      'api_keys.rate_limit_rpm',
      'api_keys.kind',
      'api_keys.expires_at',
      'api_keys.spend_limit',
      'api_keys.limit_window',
      'accounts.plan',
      'accounts.status',
      'account_region_policies.allowed_countries',
      'account_region_policies.label as region_label',
    );
  if (!row) return null;
  return {
    apiKeyId: row.id,
    accountId: row.account_id,
    userId: row.user_id,
    rateLimitRpm: row.rate_limit_rpm,
    prepaid: row.plan !== 'postpaid',
    kind: row.kind,
    expiresAt: row.expires_at ? new Date(row.expires_at).getTime() : null,
    spendLimit: row.spend_limit ?? null,
    limitWindow: row.limit_window ?? null,
    suspended: row.status === 'suspended',
    regionPolicy: row.allowed_countries ? { allowed: new Set<string>(row.allowed_countries), label: row.region_label ?? null } : null,
  };
}
