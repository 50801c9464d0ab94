import type { Db } from '../db/knex';

/**
 * Usage analytics (per user and model, for product planning). It relies on
 * legitimate interest, not on a contract, so it leaves out everyone who
 * restricted processing or objected, and accounts under restriction.
 * Billing does not go through here and is not affected by those flags.
 */
export async function usageAnalytics(db: Db, input: { from: string; to: string }) {
  const { rows } = await db.raw(
    `SELECT e.user_id, e.account_id, e.model, count(*)::int AS requests,
            sum(e.input_tokens + e.cache_read_tokens + e.cache_write_tokens)::bigint AS input_tokens, sum(e.output_tokens)::bigint AS output_tokens
       FROM usage_events e
       JOIN users u ON u.id = e.user_id
       JOIN accounts a ON a.id = e.account_id
      WHERE e.occurred_at >= ? AND e.occurred_at < ?
        AND NOT u.processing_restricted AND NOT u.objected AND u.erased_at IS NULL AND NOT a.processing_restricted
      GROUP BY 1, 2, 3
      ORDER BY 1, 3`,
    [input.from, input.to],
  );
  return rows.map((r: Record<string, unknown>) => ({ ...r, input_tokens: Number(r.input_tokens), output_tokens: Number(r.output_tokens) }));
}
