/**
 * Which usage is not invoiced yet, in SQL, for every reader that asks.
 *
 * An account's usage_hourly rows before its boundary
 * (usage_invoiced_boundaries.invoiced_until, set by the latest invoice) are
 * invoiced, without being marked, except late rows: usage settled into an
 * hour after that hour was invoiced, which stays open until an invoice
 * marks it with invoiced_by. Rows from before boundaries existed carry
 * invoiced_by too. So a row is open when
 *
 *   invoiced_by IS NULL AND (late OR hour >= the account's boundary)
 *
 * written below as two branches, so that each is a range of one index
 * ((account_id, hour) for the normal rows, the small partial index of open
 * late rows for the rest) instead of a walk through the account's history.
 */

/**
 * The normal usage_hourly rows (alias u) an invoice (alias i) consumed
 * through the boundary: its account's unmarked hours in [usage_from,
 * usage_until). With the rows marked invoiced_by = i.id, that is all the
 * usage it billed. Invoices from before boundaries have no usage_from and
 * consumed by marking only.
 */
export const CONSUMED_THROUGH_BOUNDARY = `i.usage_from IS NOT NULL
  AND u.account_id = i.account_id AND u.invoiced_by IS NULL AND NOT u.late
  AND u.hour >= i.usage_from AND u.hour < i.usage_until`;

/** The account's boundary; -infinity when nothing of it was invoiced yet. */
export function boundarySql(accountExpr: string): string {
  return `COALESCE((SELECT b.invoiced_until FROM usage_invoiced_boundaries b WHERE b.account_id = ${accountExpr}), '-infinity'::timestamptz)`;
}

/**
 * True when the account has an open usage_hourly row (alias u) meeting
 * `condition`. Bindings in `condition` appear twice, once per branch.
 */
export function openUsageExistsSql(accountExpr: string, condition: string): string {
  return `(EXISTS (SELECT 1 FROM usage_hourly u
                    WHERE u.account_id = ${accountExpr} AND u.invoiced_by IS NULL AND NOT u.late
                      AND u.hour >= ${boundarySql(accountExpr)} AND ${condition})
        OR EXISTS (SELECT 1 FROM usage_hourly u
                    WHERE u.account_id = ${accountExpr} AND u.invoiced_by IS NULL AND u.late AND ${condition}))`;
}
