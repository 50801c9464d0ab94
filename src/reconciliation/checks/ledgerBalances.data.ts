import type { Discrepancy } from '../reconciliation.rules';
import { money } from './amounts.rules';
import type { CheckContext } from './checkContext.data';

/** The `balances` check: account_balances.balance is the sum of the account's ledger entries (all time, not only the window). */
export async function checkBalances(ctx: CheckContext): Promise<Discrepancy[]> {
  const rows = (
    await ctx.db.raw(
      `SELECT b.account_id, b.balance::text AS balance, COALESCE(s.total, 0)::text AS total, COALESCE(s.entries, 0)::int AS entries
         FROM account_balances b
         LEFT JOIN (SELECT account_id, sum(amount) AS total, count(*) AS entries FROM ledger_entries GROUP BY account_id) s ON s.account_id = b.account_id
        WHERE b.balance <> COALESCE(s.total, 0)
        ORDER BY b.account_id`,
    )
  ).rows;
  // The subject carries both figures: the same mismatch is the same discrepancy, a changed one is new.
  return rows.map((r: { account_id: string; balance: string; total: string; entries: number }) => ({
    kind: 'balance_mismatch' as const,
    subject: `${r.account_id}:${money(r.total)}:${money(r.balance)}`,
    accountId: r.account_id,
    expected: money(r.total),
    actual: money(r.balance),
    unit: 'USD',
    details: { entries: r.entries },
    resolution: 'needs_attention' as const,
    repairRef: null,
  }));
}
