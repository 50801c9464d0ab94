import type { DbOrTrx } from '../db/knex';

/**
 * The reads behind the customer console's usage page (issue 26): usage by
 * UTC day, model and key from the daily aggregate (usage_daily_keys, by its
 * (account_id, day) index), and the request log from usage_events (by its
 * (account_id, occurred_at) index; a search by request id by the primary
 * key's leading column). Every query is scoped by the account id in SQL and
 * bounded by a LIMIT. Only metadata columns are read: usage_events holds no
 * prompt or completion.
 */

export interface UsageFilter {
  accountId: string;
  /** Inclusive UTC days, YYYY-MM-DD. */
  from: string;
  to: string;
  keyId: string | null;
  model: string | null;
}

function usageWhere(f: UsageFilter): { sql: string; bindings: string[] } {
  let sql = 'd.account_id = ?::uuid AND d.day >= ?::date AND d.day <= ?::date';
  const bindings = [f.accountId, f.from, f.to];
  if (f.keyId) {
    sql += ' AND d.api_key_id = ?::uuid';
    bindings.push(f.keyId);
  }
  if (f.model !== null) {
    sql += ' AND d.model = ?';
    bindings.push(f.model);
  }
  return { sql, bindings };
}

export interface UsageRow {
  day: string;
  model: string;
  api_key_id: string;
  key_name: string | null;
  key_prefix: string | null;
  requests: number;
  tokens_in: string;
  tokens_out: string;
  cost: string;
}

/** Usage per day, model and key, oldest day first; at most `limit` rows. */
export async function usageByDayModelKey(db: DbOrTrx, f: UsageFilter, limit: number): Promise<UsageRow[]> {
  const w = usageWhere(f);
  const { rows } = (await db.raw(
    `SELECT u.day::text AS day, u.model, u.api_key_id::text AS api_key_id, k.name AS key_name, k.prefix AS key_prefix,
            u.requests, u.tokens_in::text AS tokens_in, u.tokens_out::text AS tokens_out, u.cost::text AS cost
       FROM (SELECT d.day, d.model, d.api_key_id, sum(d.requests)::int AS requests,
                    sum(d.input_tokens + d.cache_read_tokens + d.cache_write_tokens)::bigint AS tokens_in,
                    sum(d.output_tokens)::bigint AS tokens_out, sum(d.cost) AS cost
               FROM usage_daily_keys d
              WHERE ${w.sql}
              GROUP BY d.day, d.model, d.api_key_id
              ORDER BY d.day, d.model, d.api_key_id
              LIMIT ?) u
       LEFT JOIN api_keys k ON k.id = u.api_key_id AND k.account_id = ?::uuid
      ORDER BY u.day, u.model, u.api_key_id`,
    [...w.bindings, limit, f.accountId],
  )) as { rows: UsageRow[] };
  return rows;
}

export interface UsageTotalRow {
  /** Which total: by 'day', 'model' or 'key', or 'all'. */
  level: 'day' | 'model' | 'key' | 'all';
  day: string | null;
  model: string | null;
  api_key_id: string | null;
  requests: number;
  tokens_in: string;
  tokens_out: string;
  cost: string;
}

/** Totals per day, per model, per key and overall, in one pass (bounded by the range's days and the account's models and keys). */
export async function usageTotals(db: DbOrTrx, f: UsageFilter): Promise<UsageTotalRow[]> {
  const w = usageWhere(f);
  const { rows } = (await db.raw(
    `SELECT CASE WHEN GROUPING(d.day) = 0 THEN 'day' WHEN GROUPING(d.model) = 0 THEN 'model' WHEN GROUPING(d.api_key_id) = 0 THEN 'key' ELSE 'all' END AS level,
            d.day::text AS day, d.model, d.api_key_id::text AS api_key_id, COALESCE(sum(d.requests), 0)::int AS requests,
            COALESCE(sum(d.input_tokens + d.cache_read_tokens + d.cache_write_tokens), 0)::bigint::text AS tokens_in,
            COALESCE(sum(d.output_tokens), 0)::bigint::text AS tokens_out, COALESCE(sum(d.cost), 0)::text AS cost
       FROM usage_daily_keys d
      WHERE ${w.sql}
      GROUP BY GROUPING SETS ((d.day), (d.model), (d.api_key_id), ())
      ORDER BY 1, 2, 3, 4
      LIMIT 5000`,
    w.bindings,
  )) as { rows: UsageTotalRow[] };
  return rows;
}

/** The account's keys (for the key filter and key names), newest first. */
export async function accountKeysForUsage(db: DbOrTrx, accountId: string, limit: number): Promise<{ id: string; name: string | null; prefix: string }[]> {
  return db('api_keys').where({ account_id: accountId }).orderBy('created_at', 'desc').limit(limit).select(db.raw('id::text AS id'), 'name', 'prefix');
}

/** The models the account used since `since` (a UTC day), by name. */
export async function accountModelsSince(db: DbOrTrx, accountId: string, since: string, limit: number): Promise<string[]> {
  const rows = (await db('usage_daily_keys').where({ account_id: accountId }).where('day', '>=', since).distinct('model').orderBy('model').limit(limit)) as { model: string }[];
  return rows.map((r) => r.model);
}

export interface RequestLogQuery {
  accountId: string;
  /** A range of occurred_at: [since, until). */
  since: Date;
  until: Date;
  keyId: string | null;
  model: string | null;
  /** Exactly this request (the range and other filters still apply to the account only). */
  requestId: string | null;
  /** The last row of the previous page: rows strictly older in (occurred_at, request_id) order. */
  before: { at: string; requestId: string } | null;
  limit: number;
}

export interface RequestLogRow {
  request_id: string;
  occurred_at: Date;
  /** occurred_at to the microsecond (UTC), for the before-cursor. */
  cursor_at: string;
  model: string | null;
  api_key_id: string;
  key_name: string | null;
  key_prefix: string | null;
  status_code: number;
  tokens_in: number;
  tokens_out: number;
  cost: string;
  currency: string;
  latency_ms: number;
}

/** The account's requests, newest first: metadata only. With `requestId`, that request of the account (if any), in any range. */
export async function requestLog(db: DbOrTrx, q: RequestLogQuery): Promise<RequestLogRow[]> {
  let where = 'e.account_id = ?::uuid';
  const bindings: (string | number | Date)[] = [q.accountId];
  if (q.requestId !== null) {
    where += ' AND e.request_id = ?';
    bindings.push(q.requestId);
  } else {
    where += ' AND e.occurred_at >= ? AND e.occurred_at < ?';
    bindings.push(q.since, q.until);
    if (q.keyId) {
      where += ' AND e.api_key_id = ?::uuid';
      bindings.push(q.keyId);
    }
    if (q.model !== null) {
      where += " AND COALESCE(e.model, '') = ?";
      bindings.push(q.model);
    }
    if (q.before) {
      where += ' AND (e.occurred_at, e.request_id) < (?::timestamptz, ?)';
      bindings.push(q.before.at, q.before.requestId);
    }
  }
  bindings.push(q.limit);
  const { rows } = (await db.raw(
    `SELECT e.request_id, e.occurred_at, to_char(e.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS cursor_at, e.model, e.api_key_id::text AS api_key_id, k.name AS key_name, k.prefix AS key_prefix, e.status_code,
            (e.input_tokens + e.cache_read_tokens + e.cache_write_tokens) AS tokens_in, e.output_tokens AS tokens_out,
            e.cost::text AS cost, e.currency, e.latency_ms
       FROM usage_events e
       LEFT JOIN api_keys k ON k.id = e.api_key_id AND k.account_id = e.account_id
      WHERE ${where}
      ORDER BY e.occurred_at DESC, e.request_id DESC
      LIMIT ?`,
    bindings,
  )) as { rows: RequestLogRow[] };
  return rows;
}
