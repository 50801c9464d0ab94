import type { Db } from '../db/knex';
import { HOLDING_STATUSES } from '../register/subprocessor.rules';
import type { Caller } from './keyCache';

/**
 * The providers a pending or objected sub-processor notice of the account holds back (index
 * subprocessor_notices_holding), as an array; asked only for an account with a data-processing agreement.
 */
const HELD_PROVIDERS = `CASE WHEN account_processing_agreements.account_id IS NULL THEN NULL ELSE ARRAY(
  SELECT DISTINCT providers.name FROM subprocessor_notices
  JOIN subprocessor_changes ON subprocessor_changes.id = subprocessor_notices.change_id
  JOIN recipients ON recipients.id = subprocessor_changes.recipient_id
  JOIN providers ON providers.id = recipients.provider_id
  WHERE subprocessor_notices.account_id = api_keys.account_id AND subprocessor_notices.status IN (${HOLDING_STATUSES.map((s) => `'${s}'`).join(', ')})
) END AS held_providers`;

/**
 * The gateway's authentication lookup: an unrevoked key of an active or suspended account, by the key's hash;
 * null when none (a closed account's keys are invalid). A suspended account's key authenticates with
 * `suspended: true`: its model calls are refused with their own code, its account endpoints answer.
 * Expired keys are returned with their expiry: the key cache decides expiry against its clock at each use.
 */
export async function callerByKeyHash(db: Db, hash: string): Promise<Caller | null> {
  const loadedAt = performance.now();
  const row = await db('api_keys')
    .join('accounts', 'accounts.id', 'api_keys.account_id')
    // The region policy comes with the key, so the cached Caller carries it (no query per request).
    .leftJoin('account_region_policies', 'account_region_policies.account_id', 'api_keys.account_id')
    // So does the data-processing agreement with its holds: a new notice, an acceptance or an objection
    // reaches the gateway within the key cache's TTL, like a region policy.
    .leftJoin('account_processing_agreements', 'account_processing_agreements.account_id', 'api_keys.account_id')
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
      db.raw(HELD_PROVIDERS),
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
    // Null without an agreement (no filter); with one, the providers held back (none: an empty set).
    subprocessors: row.held_providers ? { held: new Set<string>(row.held_providers), loadedAt } : null,
    regionPolicy: row.allowed_countries ? { allowed: new Set<string>(row.allowed_countries), label: row.region_label ?? null } : null,
  };
}
