import { Money, toAmountString } from '../../shared/money.rules';
import type { Discrepancy } from '../reconciliation.rules';
import { postEntries } from '../../ledger/ledger.data';
import { settleAccountUsage } from '../../metering/metering.service';
import { settlementDataErrorCode } from '../../metering/settlement.data';
import { money } from './amounts.rules';
import type { CheckContext } from './checkContext.data';
import { deductionCandidates, deductionsWithoutEvents, overdueUsage, settledBatches, usageHourlyMismatches } from './usageVsLedger.data';

const ACTOR = 'system:reconcile';

/**
 * The `usage` check: usage events against settlement, the ledger and
 * usage_hourly (its queries are in usageVsLedger.data.ts).
 *
 * Its two safe repairs write through the same idempotent paths as normal
 * operation: overdue usage is settled by `settleAccountUsage` (its batch key
 * is derived from the events), and a missing deduction is posted with the
 * batch's own settlement key as idempotency key. Both name the report in the
 * entry's reason.
 */
export async function checkUsage(ctx: CheckContext): Promise<Discrepancy[]> {
  const { db, window } = ctx;
  const out: Discrepancy[] = [];
  const reason = `reconciliation report ${ctx.reportId}`;

  // a. Overdue usage: settled here, through the normal settlement (safe repair).
  const cutoff = new Date(Math.min(ctx.now.getTime() - ctx.settlementLagS * 1000, new Date(window.end).getTime()));
  const overdue = await overdueUsage(db, window, cutoff);
  for (const o of overdue) {
    const keys: string[] = [];
    let events = 0;
    let cost = new Money(0);
    let refused: string | undefined;
    for (;;) {
      let r;
      try {
        r = await settleAccountUsage(db, o.account_id, { limit: 5_000, overdraftAllowance: ctx.overdraftAllowance, before: cutoff, actor: ACTOR, reason });
      } catch (err) {
        // Usage the data refuses (the settlement shard set it aside too) is for billing staff, not a failed check.
        refused = settlementDataErrorCode(err);
        if (refused === undefined) throw err;
        break;
      }
      if (r.settlementKey) keys.push(r.settlementKey);
      events += r.events;
      cost = cost.plus(r.cost);
      ctx.onProgress?.();
      if (!r.more) break;
    }
    if (refused !== undefined) {
      out.push({
        kind: 'unsettled_usage',
        subject: `${o.account_id}:refused`,
        accountId: o.account_id,
        expected: money(o.cost),
        actual: toAmountString(cost),
        unit: 'USD',
        details: { events: o.events, settledEvents: events, settlementKeys: keys, refusedWith: refused, settledBefore: cutoff.toISOString() },
        resolution: 'needs_attention',
        repairRef: null,
      });
      continue;
    }
    // Zero: the metering workflow settled them between the query and the lock.
    if (events === 0) continue;
    out.push({
      kind: 'unsettled_usage',
      subject: `${o.account_id}:${keys[0]}`,
      accountId: o.account_id,
      expected: money(o.cost),
      actual: '0',
      unit: 'USD',
      details: { events, settledCost: toAmountString(cost), settlementKeys: keys, settledBefore: cutoff.toISOString() },
      resolution: 'repaired',
      repairRef: keys.join(','),
    });
  }

  // b. Each settled batch against its ledger entry, confirmed against the whole batch before anything is reported.
  const candidates = await deductionCandidates(db, window);
  ctx.onProgress?.();
  if (candidates.length) {
    const batches = await settledBatches(db, candidates);
    for (const b of batches) {
      const cost = new Money(b.cost);
      if (b.entry_id === null) {
        if (cost.lte(0)) continue;
        const [r] = await db.transaction((trx) =>
          postEntries(
            trx,
            [
              {
                accountId: b.account_id,
                kind: 'usage',
                contra: 'revenue',
                amount: cost.neg(),
                idempotencyKey: b.settlement_key,
                referenceType: 'usage_batch',
                referenceId: b.settlement_key,
                actor: ACTOR,
                reason,
              },
            ],
            { overdraftAllowance: ctx.overdraftAllowance },
          ),
        );
        out.push({
          kind: 'usage_deduction_missing',
          subject: b.settlement_key,
          accountId: b.account_id,
          expected: toAmountString(cost.neg()),
          actual: '0',
          unit: 'USD',
          details: { events: b.events, ledgerEntryId: String(r!.entry.id) },
          resolution: 'repaired',
          repairRef: b.settlement_key,
        });
      } else if (!new Money(b.entry_amount!).eq(cost.neg()) || b.entry_account !== b.account_id) {
        out.push({
          kind: 'usage_deduction_mismatch',
          subject: b.settlement_key,
          accountId: b.account_id,
          expected: toAmountString(cost.neg()),
          actual: money(b.entry_amount),
          unit: 'USD',
          details: { events: b.events, ledgerEntryId: String(b.entry_id), ...(b.entry_account !== b.account_id ? { entryAccountId: b.entry_account } : {}) },
          resolution: 'needs_attention',
          repairRef: null,
        });
      }
    }
  }


  // c. Deductions posted in the window whose batch has no events.
  for (const d of await deductionsWithoutEvents(db, window)) out.push(d);
  ctx.onProgress?.();

  // d. Per account: the window's settled events against usage_hourly.
  for (const d of await usageHourlyMismatches(db, window)) out.push(d);
  return out;
}
