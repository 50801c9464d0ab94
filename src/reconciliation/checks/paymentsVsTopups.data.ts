import type { Discrepancy } from '../reconciliation.rules';
import { money } from './amounts.rules';
import type { CheckContext } from './checkContext.data';

/**
 * The `payments` check: every succeeded payment of the window (older than the
 * payment grace) has exactly one top-up entry of its amount on its account,
 * and every top-up entry of the window has a succeeded payment. Reports only.
 */
export async function checkPayments(ctx: CheckContext): Promise<Discrepancy[]> {
  const { db, window } = ctx;
  const graceCutoff = new Date(ctx.now.getTime() - ctx.paymentGraceS * 1000).toISOString();
  const out: Discrepancy[] = [];
  const payments = (
    await db.raw(
      `SELECT p.id, p.provider, p.provider_payment_id, p.account_id, p.amount::text AS amount,
              count(le.id)::int AS entries, COALESCE(sum(le.amount), 0)::text AS credited,
              COALESCE(bool_and(le.account_id = p.account_id), true) AS same_account, array_agg(le.id) FILTER (WHERE le.id IS NOT NULL) AS entry_ids
         FROM payments p
         LEFT JOIN ledger_entries le
                ON le.kind = 'topup' AND le.reference_type = 'payment' AND le.reference_id = p.provider || ':' || p.provider_payment_id
        WHERE p.status = 'succeeded' AND p.received_at >= ? AND p.received_at < ? AND p.received_at < ?
        GROUP BY p.id
       HAVING count(le.id) <> 1 OR COALESCE(sum(le.amount), 0) <> p.amount OR NOT COALESCE(bool_and(le.account_id = p.account_id), true)`,
      [window.start, window.end, graceCutoff],
    )
  ).rows;
  for (const p of payments) {
    const subject = `${p.provider}:${p.provider_payment_id}`;
    const details = { paymentId: p.id, ledgerEntryIds: (p.entry_ids ?? []).map(String), entries: p.entries };
    const kind = p.entries === 0 ? 'payment_without_topup' : p.entries > 1 ? 'payment_duplicate_topup' : 'topup_amount_mismatch';
    out.push({
      kind,
      subject,
      accountId: p.account_id,
      expected: money(p.amount),
      actual: money(p.credited),
      unit: 'USD',
      details: kind === 'topup_amount_mismatch' && !p.same_account ? { ...details, creditedAnotherAccount: true } : details,
      resolution: 'needs_attention',
      repairRef: null,
    });
  }
  const orphans = (
    await db.raw(
      `SELECT le.id, le.account_id, le.amount::text AS amount, le.reference_id
         FROM ledger_entries le
        WHERE le.kind = 'topup' AND le.created_at >= ? AND le.created_at < ?
          AND NOT EXISTS (
                SELECT 1 FROM payments p
                 WHERE p.status = 'succeeded'
                   AND p.provider = split_part(le.reference_id, ':', 1)
                   AND p.provider_payment_id = substr(le.reference_id, length(split_part(le.reference_id, ':', 1)) + 2))`,
      [window.start, window.end],
    )
  ).rows;
  for (const e of orphans) {
    out.push({
      kind: 'topup_without_payment',
      subject: `entry:${e.id}`,
      accountId: e.account_id,
      expected: '0',
      actual: money(e.amount),
      unit: 'USD',
      details: { ledgerEntryId: String(e.id), reference: e.reference_id },
      resolution: 'needs_attention',
      repairRef: null,
    });
  }
  return out;
}
