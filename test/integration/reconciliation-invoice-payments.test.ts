import fs from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { randomUUID } from 'node:crypto';
import type { Client, Connection } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock';
import type { Db } from '../../src/db/knex';
import { invoicingService } from '../../src/invoicing/invoicing.service';
import { postEntry } from '../../src/ledger/ledger.data';
import { reconciliationService } from '../../src/reconciliation/reconciliation.service';
import { Money } from '../../src/shared/money.rules';
import { testConfig } from '../helpers/env';
import { closeOwnStack, openOwnStack, ownDatabaseUrl } from '../helpers/ownDatabase';
import { postpaidInvoiceFactory } from '../helpers/postpaidInvoice';
import { withTestWorker, workflowBundle } from '../helpers/worker';

/**
 * The `invoice_payments` reconciliation check (docs/reconciliation.md) finds
 * each planted discrepancy between payment applications, the provider's
 * payments, the overpayment credits in the ledger and the invoices' amounts
 * paid, and nothing where the books agree. The rows are planted directly
 * (inserts only: the tables are append-only). It runs in the real
 * `reconcile` workflow, whose older recorded history must still replay.
 * Reconciliation reads every account, so this file has a database of its own.
 */
const { historyFromJSON } = createRequire(import.meta.url)('@temporalio/common/lib/proto-utils') as typeof import('@temporalio/common/lib/proto-utils');
const HISTORY = fileURLToPath(new URL('../replay/histories/reconcile.json', import.meta.url));

const config = testConfig({ DATABASE_URL: ownDatabaseUrl('invpay_check'), RECONCILE_PAYMENT_GRACE_S: '60' });
let db: Db;
let connection: Connection;
let client: Client;

const DAY = '2026-09-17';
const at = (hhmm: string) => new Date(`${DAY}T${hhmm}:00Z`);

interface Planted {
  subject: Record<'lost' | 'differs' | 'creditMissing' | 'creditDiffers' | 'overapplied' | 'notCovered', string>;
  accounts: Record<string, string>;
}
let planted: Planted;

beforeAll(async () => {
  ({ db, connection, client } = await openOwnStack(config));
}, 120_000);
afterAll(async () => {
  await closeOwnStack(config, { db, connection });
});

async function plant(): Promise<Planted> {
  const postpaidInvoice = await postpaidInvoiceFactory(db, config);
  const tag = randomUUID().slice(0, 6);
  let n = 0;
  const application = async (inv: { invoiceId: string; accountId: string }, a: { source?: string; reference: string; amount: string; received?: string; creditEntryId?: number | null; time?: string }) =>
    db('invoice_payment_applications').insert({
      invoice_id: inv.invoiceId,
      account_id: inv.accountId,
      amount: a.amount,
      received_amount: a.received ?? a.amount,
      source: a.source ?? 'stripe',
      reference: a.reference,
      paid_on: DAY,
      recorded_by: a.source === 'bank_transfer' ? 'cli:test' : 'webhook:stripe',
      credit_entry_id: a.creditEntryId ?? null,
      created_at: at(a.time ?? `0${++n % 10}:00`),
    });
  const payment = (inv: { accountId: string }, id: string, amount: string) =>
    db('payments').insert({ provider: 'stripe', provider_payment_id: id, account_id: inv.accountId, amount, currency: 'USD', status: 'succeeded', received_at: at('00:30') });
  const markedPaid = (inv: { invoiceId: string; accountId: string; number: string }) =>
    db('account_events').insert({ account_id: inv.accountId, type: 'invoice.paid', occurred_at: at('12:00'), dedupe_key: `invoice.paid:${inv.invoiceId}`, data: JSON.stringify({ accountId: inv.accountId, invoiceId: inv.invoiceId, number: inv.number }) });
  const credit = async (accountId: string, amount: string, key: string) =>
    (await postEntry(db, { accountId, kind: 'adjustment', contra: 'adjustments', amount: new Money(amount), idempotencyKey: `invoice-overpayment:bank_transfer:${key}`, referenceType: 'invoice_payment', referenceId: `bank_transfer:${key}`, actor: 'test' }, { overdraftAllowance: new Money(0) })).entry.id;

  // Books that agree: a card payment with its payment record, marked paid; one matched by our payment request; an overpayment with its credit; a voided invoice marked paid.
  const clean = await postpaidInvoice('Clean Card');
  await payment(clean, `pi_ok_${tag}`, '119');
  await application(clean, { reference: `pi_ok_${tag}`, amount: '119' });
  await markedPaid(clean);
  const byRequest = await postpaidInvoice('Clean Request');
  await db('invoice_payment_requests').insert({ invoice_id: byRequest.invoiceId, account_id: byRequest.accountId, provider: 'stripe', provider_id: `pi_req_${tag}`, amount: '119', currency: 'USD' });
  await application(byRequest, { reference: `pi_req_${tag}`, amount: '119' });
  const cleanOver = await postpaidInvoice('Clean Overpayment');
  await application(cleanOver, { source: 'bank_transfer', reference: `OK-${tag}`, amount: '119', received: '150', creditEntryId: await credit(cleanOver.accountId, '31', `OK-${tag}`) });
  const voided = await postpaidInvoice('Voided');
  await invoicingService({ db, clock: systemClock, config }).invoices.void({ id: voided.invoiceId, reason: 'issued in error' }, 'cli:test');
  await markedPaid(voided);

  // 1. A card payment applied without any record of the payment.
  const lost = await postpaidInvoice('Lost Payment');
  await application(lost, { reference: `pi_lost_${tag}`, amount: '119' });
  // 2. A card payment whose payment record says another amount.
  const differs = await postpaidInvoice('Differs');
  await payment(differs, `pi_diff_${tag}`, '100');
  await application(differs, { reference: `pi_diff_${tag}`, amount: '119' });
  // 3. An overpayment without its ledger credit.
  const creditMissing = await postpaidInvoice('Credit Missing');
  await application(creditMissing, { source: 'bank_transfer', reference: `OVER1-${tag}`, amount: '119', received: '150' });
  // 4. An overpayment whose ledger credit is another amount.
  const creditDiffers = await postpaidInvoice('Credit Differs');
  await application(creditDiffers, { source: 'bank_transfer', reference: `OVER2-${tag}`, amount: '119', received: '150', creditEntryId: await credit(creditDiffers.accountId, '30', `OVER2-${tag}`) });
  // 5. Applications that pay more than is due.
  const overapplied = await postpaidInvoice('Overapplied');
  await application(overapplied, { source: 'bank_transfer', reference: `OA1-${tag}`, amount: '100' });
  await application(overapplied, { source: 'bank_transfer', reference: `OA2-${tag}`, amount: '30' });
  // 6. Marked paid, but only part of it was.
  const notCovered = await postpaidInvoice('Not Covered');
  await application(notCovered, { source: 'bank_transfer', reference: `PART-${tag}`, amount: '50' });
  await markedPaid(notCovered);

  return {
    subject: {
      lost: `stripe:pi_lost_${tag}`,
      differs: `stripe:pi_diff_${tag}`,
      creditMissing: `bank_transfer:OVER1-${tag}`,
      creditDiffers: `bank_transfer:OVER2-${tag}`,
      overapplied: overapplied.number,
      notCovered: notCovered.number,
    },
    accounts: { lost: lost.accountId, differs: differs.accountId, creditMissing: creditMissing.accountId, creditDiffers: creditDiffers.accountId, overapplied: overapplied.accountId, notCovered: notCovered.accountId },
  };
}

type Found = { check: string; kind: string; subject: string; accountId: string; expected: string; actual: string; difference: string; unit: string; details: Record<string, unknown>; resolution: string; new: boolean };
const ours = (r: { discrepancies: Found[] }) => r.discrepancies.filter((d) => d.check === 'invoice_payments');

describe('the invoice_payments check', () => {
  it('finds every planted discrepancy and nothing where the books agree, again without anything new', async () => {
    planted = await plant();
    await withTestWorker(config, db, async () => {
      const svc = reconciliationService({ db, clock: systemClock, client, taskQueue: config.temporal.taskQueue });
      const started = await svc.start({ day: DAY }, 'staff:test');
      const result = await svc.wait(started);
      expect(result.checks.invoice_payments).toMatchObject({ found: 6, needsAttention: 6, repaired: 0 });
      const report = await svc.get({ id: started.reportId });
      const found = ours(report as unknown as { discrepancies: Found[] });
      expect(found.map((d) => `${d.kind} ${d.subject}`).sort()).toEqual(
        [
          `invoice_payment_without_payment ${planted.subject.lost}`,
          `invoice_payment_mismatch ${planted.subject.differs}`,
          `overpayment_credit_missing ${planted.subject.creditMissing}`,
          `overpayment_credit_mismatch ${planted.subject.creditDiffers}`,
          `invoice_overapplied ${planted.subject.overapplied}`,
          `invoice_paid_not_covered ${planted.subject.notCovered}`,
        ].sort(),
      );
      expect(found.every((d) => d.resolution === 'needs_attention' && d.new && d.unit === 'USD')).toBe(true);
      const by = (kind: string) => found.find((d) => d.kind === kind)!;
      expect(by('invoice_payment_without_payment')).toMatchObject({ accountId: planted.accounts.lost, expected: '119.000000000000', actual: '0.000000000000', details: { comparedWith: null } });
      expect(by('invoice_payment_mismatch')).toMatchObject({ accountId: planted.accounts.differs, expected: '119.000000000000', actual: '100.000000000000', details: { comparedWith: 'payment', differs: { amount: true, account: false, currency: false, status: false } } });
      expect(by('overpayment_credit_missing')).toMatchObject({ accountId: planted.accounts.creditMissing, expected: '31.000000000000', actual: '0.000000000000', details: { received: '150', applied: '119', creditEntryId: null } });
      expect(by('overpayment_credit_mismatch')).toMatchObject({ accountId: planted.accounts.creditDiffers, expected: '31.000000000000', actual: '30.000000000000', difference: '-1.000000000000' });
      expect(by('invoice_overapplied')).toMatchObject({ accountId: planted.accounts.overapplied, expected: '119.000000000000', actual: '130.000000000000', details: { applications: 2, creditNotes: '0', markedPaid: false } });
      expect(by('invoice_paid_not_covered')).toMatchObject({ accountId: planted.accounts.notCovered, expected: '119.000000000000', actual: '50.000000000000', details: { markedPaid: true } });

      // The same books again: the same six, none new; a day with nothing planted finds nothing.
      const again = await svc.get({ id: (await svc.wait(await svc.start({ day: DAY }, 'staff:test'))).reportId });
      const second = ours(again as unknown as { discrepancies: Found[] });
      expect(second).toHaveLength(6);
      expect(second.every((d) => !d.new)).toBe(true);
      const other = await svc.wait(await svc.start({ day: '2026-09-18' }, 'staff:test'));
      expect(other.checks.invoice_payments).toMatchObject({ found: 0 });

      // Covering a month, the check finds the same.
      const month = await svc.wait(await svc.start({ period: '2026-09' }, 'staff:test'));
      expect(month.checks.invoice_payments).toMatchObject({ found: 6 });

      // A run recorded before the check existed still replays; a run with it replays too.
      const bundle = await workflowBundle();
      await Worker.runReplayHistory({ workflowBundle: bundle }, historyFromJSON(JSON.parse(fs.readFileSync(HISTORY, 'utf8'))), 'reconcile-replay');
      await Worker.runReplayHistory({ workflowBundle: bundle }, await client.workflow.getHandle(started.workflowId, started.reportId).fetchHistory(), started.workflowId);
    });
  });
});
