import type { DbOrTrx } from '../db/knex';

/**
 * The client read API's queries (issue 22: GET /v1/key, /v1/credits,
 * /v1/generation, /v1/activity). Every query is scoped by the caller's
 * account id (and, for an inference key, its key id) in SQL, so a row of
 * another account is never read, not merely filtered out afterwards.
 * Spend and activity come from usage_daily_keys; usage_events is read only
 * for one request's row, by its primary key's leading column.
 */

export interface KeyOverviewRow {
  id: string;
  name: string | null;
  prefix: string;
  kind: 'inference' | 'management';
  created_at: Date;
  expires_at: Date | null;
  revoked_at: Date | null;
  rate_limit_rpm: number | null;
  spend_limit: string | null;
  limit_window: 'daily' | 'weekly' | 'monthly' | null;
  currency: string;
  /** Settled spend since the first day of the calendar day, week and month, and in the key's life. */
  spend_day: string;
  spend_week: string;
  spend_month: string;
  spend_lifetime: string;
}

/**
 * The key with its settled spend. `days` are the first UTC days of the calendar
 * day, week and month (the key's window is one of them, or its whole life); a window
 * ends with `days.day`, today. One aggregate over the key's rows of usage_daily_keys
 * (its primary key's prefix).
 */
export async function keyOverview(
  db: DbOrTrx,
  accountId: string,
  keyId: string,
  days: { day: string; week: string; month: string },
): Promise<KeyOverviewRow | null> {
  const { rows } = (await db.raw(
    `SELECT k.id::text, k.name, k.prefix, k.kind, k.created_at, k.expires_at, k.revoked_at, k.rate_limit_rpm,
            k.spend_limit::text AS spend_limit, k.limit_window, a.currency,
            s.spend_day::text, s.spend_week::text, s.spend_month::text, s.spend_lifetime::text
       FROM api_keys k
       JOIN accounts a ON a.id = k.account_id
      CROSS JOIN LATERAL (
        SELECT COALESCE(sum(d.cost) FILTER (WHERE d.day >= ?::date AND d.day <= ?::date), 0) AS spend_day,
               COALESCE(sum(d.cost) FILTER (WHERE d.day >= ?::date AND d.day <= ?::date), 0) AS spend_week,
               COALESCE(sum(d.cost) FILTER (WHERE d.day >= ?::date AND d.day <= ?::date), 0) AS spend_month,
               COALESCE(sum(d.cost), 0) AS spend_lifetime
          FROM usage_daily_keys d
         WHERE d.api_key_id = k.id) s
      WHERE k.id = ?::uuid AND k.account_id = ?::uuid`,
    [days.day, days.day, days.week, days.day, days.month, days.day, keyId, accountId],
  )) as { rows: KeyOverviewRow[] };
  return rows[0] ?? null;
}

/** One key's settled spend, as in KeyOverviewRow. */
export type KeySpendRow = Pick<KeyOverviewRow, 'id' | 'spend_day' | 'spend_week' | 'spend_month' | 'spend_lifetime'>;

/**
 * The settled spend of a page of the account's keys (as keyOverview reports
 * each), in one grouped query over their rows of usage_daily_keys (each key's
 * primary key prefix). A key with no usage, or not of the account, has no row.
 */
export async function keysSpend(
  db: DbOrTrx,
  accountId: string,
  keyIds: readonly string[],
  days: { day: string; week: string; month: string },
): Promise<Map<string, KeySpendRow>> {
  if (keyIds.length === 0) return new Map();
  const { rows } = (await db.raw(
    `SELECT d.api_key_id::text AS id,
            COALESCE(sum(d.cost) FILTER (WHERE d.day >= ?::date AND d.day <= ?::date), 0)::text AS spend_day,
            COALESCE(sum(d.cost) FILTER (WHERE d.day >= ?::date AND d.day <= ?::date), 0)::text AS spend_week,
            COALESCE(sum(d.cost) FILTER (WHERE d.day >= ?::date AND d.day <= ?::date), 0)::text AS spend_month,
            COALESCE(sum(d.cost), 0)::text AS spend_lifetime
       FROM usage_daily_keys d
       JOIN api_keys k ON k.id = d.api_key_id AND k.account_id = ?::uuid
      WHERE d.api_key_id = ANY(?::uuid[])
      GROUP BY d.api_key_id`,
    [days.day, days.day, days.week, days.day, days.month, days.day, accountId, [...keyIds]],
  )) as { rows: KeySpendRow[] };
  return new Map(rows.map((r) => [r.id, r]));
}

export interface CreditsRow {
  plan: 'prepaid' | 'postpaid';
  credit_limit: string;
  currency: string;
  balance: string;
  held: string;
}

/** The account's balance row (zero when it has none yet) and its plan. */
export async function accountCredits(db: DbOrTrx, accountId: string): Promise<CreditsRow | null> {
  const { rows } = (await db.raw(
    `SELECT a.plan, a.credit_limit::text AS credit_limit, a.currency,
            COALESCE(b.balance, 0)::text AS balance, COALESCE(b.held, 0)::text AS held
       FROM accounts a LEFT JOIN account_balances b ON b.account_id = a.id
      WHERE a.id = ?::uuid`,
    [accountId],
  )) as { rows: CreditsRow[] };
  return rows[0] ?? null;
}

export interface GenerationRow {
  request_id: string;
  occurred_at: Date;
  finished_at: Date;
  api_key_id: string;
  endpoint: string;
  model: string | null;
  provider: string | null;
  status_code: number;
  error_type: string | null;
  stream: boolean;
  input_tokens: number;
  cache_read_tokens: number;
  cache_write_tokens: number;
  output_tokens: number;
  reasoning_tokens: number;
  usage_estimated: boolean;
  cost: string;
  currency: string;
  latency_ms: number;
  upstream_latency_ms: number | null;
  settled: boolean;
}

/**
 * One request of the account (of one key when `keyId` is given), by request id.
 * usage_events' primary key (request_id, occurred_at) leads with the request id,
 * so each day partition answers with one index probe; the account and key
 * conditions make another account's id indistinguishable from an unknown one.
 */
export async function generationById(db: DbOrTrx, accountId: string, requestId: string, keyId: string | null): Promise<GenerationRow | null> {
  const { rows } = (await db.raw(
    `SELECT request_id, occurred_at, finished_at, api_key_id::text AS api_key_id, endpoint, model, provider, status_code, error_type, stream,
            input_tokens, cache_read_tokens, cache_write_tokens, output_tokens, reasoning_tokens, usage_estimated,
            cost::text AS cost, currency, latency_ms, upstream_latency_ms, settled_at IS NOT NULL AS settled
       FROM usage_events
      WHERE request_id = ? AND account_id = ?::uuid ${keyId ? 'AND api_key_id = ?::uuid' : ''}
      LIMIT 1`,
    keyId ? [requestId, accountId, keyId] : [requestId, accountId],
  )) as { rows: GenerationRow[] };
  return rows[0] ?? null;
}

/** The dimensions activity can be grouped by, in their output (and paging) order. */
export const ACTIVITY_DIMENSIONS = ['day', 'model', 'key'] as const;
export type ActivityDimension = (typeof ACTIVITY_DIMENSIONS)[number];

const DIMENSION_SQL: Record<ActivityDimension, { column: string; select: string; cursorType: string }> = {
  day: { column: 'day', select: 'day::text AS date', cursorType: '::date' },
  model: { column: 'model', select: 'model', cursorType: '::text' },
  key: { column: 'api_key_id', select: 'api_key_id::text AS api_key_id', cursorType: '::uuid' },
};

export interface ActivityRow {
  date?: string;
  model?: string;
  api_key_id?: string;
  requests: number;
  input_tokens: number;
  cache_read_tokens: number;
  cache_write_tokens: number;
  output_tokens: number;
  reasoning_tokens: number;
  cost: string;
}

export interface ActivityQuery {
  accountId: string;
  /** Only this key's rows (an inference key's view); null for the whole account. */
  keyId: string | null;
  from: string;
  to: string;
  /** A non-empty subset of ACTIVITY_DIMENSIONS, in that order. */
  groupBy: readonly ActivityDimension[];
  /** The grouped values of the last row of the previous page, in groupBy's order. */
  after: readonly string[] | null;
  limit: number;
}

/**
 * A page of usage_daily_keys summed per the grouped dimensions, in their order.
 * Paging is by keyset on the grouped columns: every row of a group shares the
 * tuple, so filtering rows by it before grouping selects whole groups.
 */
export async function activityPage(db: DbOrTrx, q: ActivityQuery): Promise<ActivityRow[]> {
  const dims = q.groupBy.map((d) => DIMENSION_SQL[d]);
  const cols = dims.map((d) => d.column).join(', ');
  const bindings: (string | number)[] = [q.accountId, q.from, q.to];
  let where = 'account_id = ?::uuid AND day >= ?::date AND day <= ?::date';
  if (q.keyId) {
    where += ' AND api_key_id = ?::uuid';
    bindings.push(q.keyId);
  }
  if (q.after) {
    where += ` AND (${cols}) > (${dims.map((d) => `?${d.cursorType}`).join(', ')})`;
    bindings.push(...q.after);
  }
  bindings.push(q.limit);
  const { rows } = (await db.raw(
    `SELECT ${dims.map((d) => d.select).join(', ')},
            sum(requests)::bigint AS requests, sum(input_tokens)::bigint AS input_tokens,
            sum(cache_read_tokens)::bigint AS cache_read_tokens, sum(cache_write_tokens)::bigint AS cache_write_tokens,
            sum(output_tokens)::bigint AS output_tokens, sum(reasoning_tokens)::bigint AS reasoning_tokens,
            sum(cost)::text AS cost
       FROM usage_daily_keys
      WHERE ${where}
      GROUP BY ${cols}
      ORDER BY ${cols}
      LIMIT ?`,
    bindings,
  )) as { rows: ActivityRow[] };
  return rows;
}
