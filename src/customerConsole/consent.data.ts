import type { DbOrTrx } from '../db/knex';

/** Queries of console cookie consent (consent_records of purpose 'cookies') and of the aggregated page view counts. */

export interface CookieRecordRow {
  granted: boolean;
  categories: string[] | null;
  policy_version: string | null;
  source: string;
  at: Date;
}

/** The version of the privacy policy published last, if any. */
export async function latestPolicyVersion(db: DbOrTrx): Promise<string | null> {
  const row = await db('privacy_policy_versions').orderBy('published_at', 'desc').first('version');
  return (row?.version as string | undefined) ?? null;
}

/** The user's latest record of a purpose (the index user_id, purpose, id finds it). */
export async function latestRecordOf(db: DbOrTrx, userId: string, purpose: string): Promise<CookieRecordRow | null> {
  return (await db('consent_records').where({ user_id: userId, purpose }).orderBy('id', 'desc').first('granted', 'categories', 'policy_version', 'source', 'at')) ?? null;
}

/** The user's records of a purpose, newest first, at most `limit`. */
export async function recordsOf(db: DbOrTrx, userId: string, purpose: string, limit: number): Promise<CookieRecordRow[]> {
  return db('consent_records').where({ user_id: userId, purpose }).orderBy('id', 'desc').limit(limit).select('granted', 'categories', 'policy_version', 'source', 'at');
}

export async function insertRecord(
  db: DbOrTrx,
  r: { user_id: string; purpose: string; granted: boolean; categories: string[]; policy_version: string; source: string; at: Date },
): Promise<void> {
  await db('consent_records').insert(r);
}

/** One page view: one row per day and page however many users, so the table cannot grow with them. */
export async function countPageView(db: DbOrTrx, day: string, page: string): Promise<void> {
  await db.raw(`INSERT INTO page_view_counts (day, page, views) VALUES (?::date, ?, 1) ON CONFLICT (day, page) DO UPDATE SET views = page_view_counts.views + 1`, [day, page]);
}

/** The counts of a day range (inclusive), busiest first, at most `limit` rows. */
export async function pageViewCounts(db: DbOrTrx, from: string, to: string, limit: number): Promise<{ day: string; page: string; views: string }[]> {
  return db('page_view_counts')
    .whereBetween('day', [from, to])
    .orderBy([{ column: 'day', order: 'desc' }, { column: 'views', order: 'desc' }, { column: 'page' }])
    .limit(limit)
    .select(db.raw(`to_char(day, 'YYYY-MM-DD') AS day`), 'page', db.raw('views::text AS views'));
}
