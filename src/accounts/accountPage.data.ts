import type { DbOrTrx } from '../db/knex';

/**
 * The reads behind the console's account pages: the account search, and the
 * holds, payments and usage shown on an account. Read-only, newest first,
 * each a page of at most `limit` rows.
 */
export async function searchAccounts(db: DbOrTrx, q: string, limit: number) {
  const query = db('accounts').orderBy('name').limit(limit).select('id', 'name', 'country', 'vat_id', 'plan', 'status');
  if (q) {
    query.where((w) => {
      if (/^[0-9a-f-]{36}$/i.test(q)) w.orWhere('id', q);
      w.orWhereILike('name', `%${q}%`).orWhereILike('vat_id', `%${q}%`);
    });
  }
  return query;
}

export async function openHolds(db: DbOrTrx, accountId: string, limit: number) {
  return db('balance_holds').where({ account_id: accountId, status: 'open' }).orderBy('created_at', 'desc').limit(limit);
}

export async function recentPayments(db: DbOrTrx, accountId: string, limit: number) {
  return db('payments').where({ account_id: accountId }).orderBy('received_at', 'desc').limit(limit);
}

/** Tokens and cost per UTC day and model since `since`, oldest day first. */
export async function usageByDayAndModel(db: DbOrTrx, accountId: string, since: Date) {
  return db('usage_hourly')
    .where({ account_id: accountId })
    .where('hour', '>=', since)
    .groupByRaw(`1, 2`)
    .orderByRaw('1')
    .select(db.raw(`to_char(hour AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day`), 'model', db.raw('sum(input_tokens + cache_read_tokens + cache_write_tokens + output_tokens)::bigint AS tokens'), db.raw('sum(cost)::text AS cost'));
}
