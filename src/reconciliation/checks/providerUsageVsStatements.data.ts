import type { Discrepancy } from '../reconciliation.rules';
import { diff, money } from './amounts.rules';
import type { CheckContext } from './checkContext.data';

/**
 * The `provider_usage` check: providers' imported statements against our
 * metering, per provider, UTC day and model, for the days a statement covers.
 */
export async function checkProviderUsage(ctx: CheckContext): Promise<Discrepancy[]> {
  const { db, window } = ctx;
  const rows = (
    await db.raw(
      `WITH st AS (
         SELECT provider, day, model, input_tokens, cached_tokens, output_tokens, cost, currency
           FROM provider_statements
          WHERE day >= (?::timestamptz AT TIME ZONE 'UTC')::date AND day < (?::timestamptz AT TIME ZONE 'UTC')::date),
       covered AS (SELECT DISTINCT provider, day FROM st),
       ours AS (
         SELECT e.provider, (e.occurred_at AT TIME ZONE 'UTC')::date AS day, e.upstream_model AS model, count(*) AS requests,
                sum(e.input_tokens + e.cache_read_tokens + e.cache_write_tokens) AS input_tokens,
                sum(e.cache_read_tokens) AS cached_tokens, sum(e.output_tokens) AS output_tokens, sum(e.cost) AS cost
           FROM usage_events e
          WHERE e.occurred_at >= ? AND e.occurred_at < ? AND e.provider IS NOT NULL AND e.upstream_model IS NOT NULL
          GROUP BY 1, 2, 3),
       ours_covered AS (SELECT o.* FROM ours o JOIN covered c ON c.provider = o.provider AND c.day = o.day)
       SELECT COALESCE(st.provider, o.provider) AS provider, to_char(COALESCE(st.day, o.day), 'YYYY-MM-DD') AS day, COALESCE(st.model, o.model) AS model,
              COALESCE(o.requests, 0)::text AS requests,
              COALESCE(o.input_tokens, 0)::text AS our_input, COALESCE(o.cached_tokens, 0)::text AS our_cached,
              COALESCE(o.output_tokens, 0)::text AS our_output, COALESCE(o.cost, 0)::text AS our_cost,
              COALESCE(st.input_tokens, 0)::text AS their_input, COALESCE(st.cached_tokens, 0)::text AS their_cached,
              COALESCE(st.output_tokens, 0)::text AS their_output, COALESCE(st.cost, 0)::text AS their_cost, st.currency
         FROM st FULL JOIN ours_covered o ON o.provider = st.provider AND o.day = st.day AND o.model = st.model
        WHERE COALESCE(st.input_tokens, 0) <> COALESCE(o.input_tokens, 0)
           OR COALESCE(st.cached_tokens, 0) <> COALESCE(o.cached_tokens, 0)
           OR COALESCE(st.output_tokens, 0) <> COALESCE(o.output_tokens, 0)
        ORDER BY 1, 2, 3`,
      [window.start, window.end, window.start, window.end],
    )
  ).rows;
  return rows.map((r: Record<string, string>) => {
    const ours = { input: Number(r.our_input), cached: Number(r.our_cached), output: Number(r.our_output) };
    const theirs = { input: Number(r.their_input), cached: Number(r.their_cached), output: Number(r.their_output) };
    return {
      kind: 'provider_usage_mismatch' as const,
      // Both token totals in the subject: a corrected statement that still disagrees is a new discrepancy.
      subject: `${r.provider}:${r.day}:${r.model}:${theirs.input}/${theirs.cached}/${theirs.output}:${ours.input}/${ours.cached}/${ours.output}`,
      accountId: null,
      expected: String(ours.input + ours.output),
      actual: String(theirs.input + theirs.output),
      unit: 'tokens',
      details: {
        provider: r.provider,
        day: r.day,
        model: r.model,
        requests: Number(r.requests),
        tokens: {
          ours,
          theirs,
          difference: { input: theirs.input - ours.input, cached: theirs.cached - ours.cached, output: theirs.output - ours.output },
        },
        cost: { providerBilled: money(r.their_cost), currency: r.currency ?? 'USD', weCharged: money(r.our_cost), margin: diff(r.their_cost!, r.our_cost!) },
      },
      resolution: 'needs_attention' as const,
      repairRef: null,
    };
  });
}
