import { claimOutboxEmail, markOutboxEmailSent } from '../notify/outbox.data';
import type { Db, DbOrTrx } from '../db/knex';

/**
 * Queries of privacy policy versions (docs/customer-console.md#policy-changes):
 * the versions, who acknowledged which, and the owners' emails in the
 * notification outbox.
 */

export interface PolicyVersionRow {
  version: string;
  title: string;
  summary: string;
  url: string | null;
  material: boolean;
  published_at: Date;
  published_by: string;
}

/** Inserts a version; a version already published fails on the primary key (23505). */
export async function insertVersion(db: DbOrTrx, row: PolicyVersionRow): Promise<PolicyVersionRow> {
  const [r] = await db('privacy_policy_versions').insert(row).returning('*');
  return r as PolicyVersionRow;
}

export const findVersion = (db: DbOrTrx, version: string): Promise<PolicyVersionRow | undefined> => db('privacy_policy_versions').where({ version }).first('*');

/** Newest first, bounded. */
export const listVersions = (db: DbOrTrx, limit: number): Promise<PolicyVersionRow[]> =>
  db('privacy_policy_versions').orderBy('published_at', 'desc').orderBy('version', 'desc').limit(limit).select('*');

/** How many users acknowledged each of `versions`. */
export async function acknowledgementCounts(db: DbOrTrx, versions: string[]): Promise<Map<string, number>> {
  if (versions.length === 0) return new Map();
  const rows = (await db('policy_acknowledgements').whereIn('version', versions).groupBy('version').select('version', db.raw('count(*)::int AS n'))) as { version: string; n: number }[];
  return new Map(rows.map((r) => [r.version, r.n]));
}

/**
 * The latest material version and whether `userId` acknowledged it: one
 * statement, the newest material row by the published_at index and the
 * acknowledgement by its primary key, whatever the number of versions,
 * users or accounts.
 */
export async function latestMaterialFor(db: DbOrTrx, userId: string): Promise<(PolicyVersionRow & { acknowledged: boolean }) | undefined> {
  const { rows } = (await db.raw(
    `SELECT v.*, (a.user_id IS NOT NULL) AS acknowledged FROM (
       SELECT * FROM privacy_policy_versions WHERE material ORDER BY published_at DESC, version DESC LIMIT 1
     ) v
     LEFT JOIN policy_acknowledgements a ON a.user_id = ? AND a.version = v.version`,
    [userId],
  )) as { rows: (PolicyVersionRow & { acknowledged: boolean })[] };
  return rows[0];
}

/** Records the acknowledgement if the version exists; a second one changes nothing. Returns whether the version exists. */
export async function acknowledge(db: DbOrTrx, userId: string, version: string, at: Date): Promise<boolean> {
  const { rows } = (await db.raw(
    `WITH v AS (SELECT version FROM privacy_policy_versions WHERE version = ?),
          ins AS (INSERT INTO policy_acknowledgements (user_id, version, at) SELECT ?, version, ? FROM v ON CONFLICT DO NOTHING RETURNING 1)
     SELECT (SELECT count(*) FROM v)::int AS found`,
    [version, userId, at],
  )) as { rows: { found: number }[] };
  return rows[0]!.found > 0;
}

/**
 * One page of account owners (users with the owner role whose console access
 * was not removed, not erased, of an account not closed), after `after` by
 * user id, and an email queued for each under its key: one statement, the
 * key making a repeated page queue nothing. Returns how many owners the page
 * had, how many emails are new, and the last owner's id.
 */
export async function queueOwnerEmailsPage(
  db: Db,
  p: { keyPrefix: string; subject: string; body: string; after: string | null; limit: number },
): Promise<{ owners: number; queued: number; last: string | null }> {
  const { rows } = (await db.raw(
    `WITH owners AS (
       SELECT u.id, u.email FROM users u JOIN accounts a ON a.id = u.account_id
        WHERE u.console_role = 'owner' AND u.console_removed_at IS NULL AND u.erased_at IS NULL AND a.status <> 'closed'
          AND (?::uuid IS NULL OR u.id > ?::uuid)
        ORDER BY u.id LIMIT ?
     ), ins AS (
       INSERT INTO notification_outbox (idempotency_key, recipient, subject, body)
       SELECT ? || id::text, email, ?, ? FROM owners
       ON CONFLICT (idempotency_key) DO NOTHING RETURNING 1
     )
     SELECT (SELECT count(*) FROM owners)::int AS owners, (SELECT count(*) FROM ins)::int AS queued,
            (SELECT id::text FROM owners ORDER BY id DESC LIMIT 1) AS last`,
    [p.after, p.after, p.limit, p.keyPrefix, p.subject, p.body],
  )) as { rows: { owners: number; queued: number; last: string | null }[] };
  return rows[0]!;
}

/** Claims one unsent email of a version (skipping ones another sender holds), in the caller's transaction. */
export const claimUnsentEmail = (trx: DbOrTrx, keyPrefix: string) => claimOutboxEmail(trx, keyPrefix);

/** Marks an email sent, its body cleared as for every outbox message. */
export const markEmailSent = (trx: DbOrTrx, id: string) => markOutboxEmailSent(trx, id);

/** Whether any email of a version is still unsent. */
export const hasUnsentEmails = async (db: DbOrTrx, keyPrefix: string): Promise<boolean> =>
  !!(await db('notification_outbox').whereNull('sent_at').whereRaw('starts_with(idempotency_key, ?)', [keyPrefix]).first('id'));
