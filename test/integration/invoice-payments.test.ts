import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminApp } from '../../src/admin/app';
import { systemClock } from '../../src/clock';
import { staffService } from '../../src/staff/staff.service';
import { runCli, runCliJson } from '../helpers/cli';
import { silentLogger, testConfig, testDb, testEnv } from '../helpers/env';
import { postpaidInvoiceFactory } from '../helpers/postpaidInvoice';
import { serve } from '../helpers/servers';
import { allowRetentionDeletes, deleteInvoices } from '../../src/retention/retention.data';

/**
 * Collections, first slice (issue 23; docs/collections.md): bank transfers
 * recorded against a postpaid invoice through the admin API and the CLI, once
 * per reference; an overpayment's rest credited to the account once; a
 * write-off; and the aging report against the invoices it was built from.
 */
const config = testConfig();
const env = testEnv(config);
const db = testDb(config);
let base: string;
let close: () => Promise<void>;
let token: string;
let postpaidInvoice: Awaited<ReturnType<typeof postpaidInvoiceFactory>>;
const today = () => new Date().toISOString().slice(0, 10);
const addDays = (d: string, n: number) => new Date(Date.parse(`${d}T00:00:00Z`) + n * 86_400_000).toISOString().slice(0, 10);

beforeAll(async () => {
  postpaidInvoice = await postpaidInvoiceFactory(db, config);
  const app = createAdminApp({ db, billing: config.billing, config, clock: systemClock, logger: silentLogger, readiness: {}, readyCheckTimeoutMs: 1000 });
  ({ url: base, close } = await serve(app));
  token = (await staffService({ db }).createStaffToken({ role: 'billing' })).token;
});
afterAll(async () => {
  await close();
  await db.destroy();
});

async function call(method: 'GET' | 'POST', path: string, body?: unknown) {
  const res = await fetch(base + path, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const type = res.headers.get('content-type') ?? '';
  const text = await res.text();
  return { status: res.status, type, text, body: type.includes('json') && text ? JSON.parse(text) : undefined };
}

const overpaymentEntries = (accountId: string) => db('ledger_entries').where({ account_id: accountId, reference_type: 'invoice_payment' }).orderBy('id');

describe('recording bank transfers against a postpaid invoice', () => {
  it('goes open -> partially paid -> paid, once per reference, and credits an overpayment once', async () => {
    const inv = await postpaidInvoice();
    const shown = await call('GET', `/billing/invoices/${inv.invoiceId}`);
    expect(shown.status).toBe(200);
    expect(shown.body.totals.amountDue).toBe('119.00');
    expect(shown.body.payment).toEqual({ status: 'open', amountPaid: '0.00', outstanding: '119.00', daysOverdue: 0 });

    // A partial transfer through the admin API.
    const ref1 = `TR-${randomUUID().slice(0, 8)}-1`;
    const first = await call('POST', `/billing/invoices/${inv.invoiceId}/payments`, { amount: '50.00', paidOn: today(), reference: ref1 });
    expect(first.status).toBe(201);
    expect(first.body.applied).toBe(true);
    expect(first.body.application).toMatchObject({ amount: '50.00', receivedAmount: '50.00', creditedToAccount: '0.00', reference: ref1, source: 'bank_transfer', recordedBy: expect.stringMatching(/^staff:/) });
    expect(first.body.invoice.payment).toEqual({ status: 'partially_paid', amountPaid: '50.00', outstanding: '69.00', daysOverdue: 0 });

    // Retried: the same application, nothing new.
    const retry = await call('POST', `/billing/invoices/${inv.invoiceId}/payments`, { amount: '50', paidOn: today(), reference: ref1 });
    expect(retry.status).toBe(201);
    expect(retry.body.applied).toBe(false);
    expect(retry.body.application.id).toBe(first.body.application.id);
    // The same reference with another amount is a different transfer: a conflict.
    const clash = await call('POST', `/billing/invoices/${inv.invoiceId}/payments`, { amount: '51.00', paidOn: today(), reference: ref1 });
    expect(clash.status).toBe(409);
    expect(clash.type).toContain('application/problem+json');
    expect(clash.body.detail ?? clash.body.title).toContain(ref1);

    // The rest and more through the CLI: 69.00 applied, 31.00 credited to the account.
    const ref2 = `TR-${randomUUID().slice(0, 8)}-2`;
    const args = ['invoices', 'record-payment', inv.invoiceId, '--amount', '100.00', '--date', today(), '--reference', ref2];
    const second = await runCliJson(args, env);
    expect(second.applied).toBe(true);
    expect(second.application).toMatchObject({ amount: '69.00', receivedAmount: '100.00', creditedToAccount: '31.00', recordedBy: expect.stringMatching(/^cli:/) });
    expect(second.invoice.payment).toEqual({ status: 'paid', amountPaid: '119.00', outstanding: '0.00', daysOverdue: 0 });
    const again = await runCliJson(args, env);
    expect(again.applied).toBe(false);
    expect(again.application.id).toBe(second.application.id);

    const credits = await overpaymentEntries(inv.accountId);
    expect(credits).toHaveLength(1);
    expect(credits[0]).toMatchObject({ kind: 'adjustment', contra: 'adjustments', amount: '31.000000000000', idempotency_key: `invoice-overpayment:bank_transfer:${ref2}` });
    expect(String(second.application.creditEntryId)).toBe(String(credits[0].id));

    // Amount paid is the sum of the applications; a paid invoice takes no more.
    const apps = await db('invoice_payment_applications').where({ invoice_id: inv.invoiceId });
    expect(apps).toHaveLength(2);
    expect(apps.reduce((s, a) => s + Number(a.amount), 0)).toBe(119);
    const more = await call('POST', `/billing/invoices/${inv.invoiceId}/payments`, { amount: '1.00', paidOn: today(), reference: `TR-${randomUUID().slice(0, 8)}-3` });
    expect(more.status).toBe(409);

    // Shown on reads: the list, the invoice, the payments view, the CLI.
    const list = await call('GET', `/billing/invoices?accountId=${inv.accountId}`);
    expect(list.body).toEqual([expect.objectContaining({ id: inv.invoiceId, paymentStatus: 'paid', amountPaid: '119.00' })]);
    const view = await runCliJson(['invoices', 'payments', inv.invoiceId], env);
    expect(view.applications.map((a: { reference: string }) => a.reference)).toEqual([ref1, ref2]);
    expect(view.writeOff).toBeNull();

    // Append-only.
    await expect(db('invoice_payment_applications').where({ invoice_id: inv.invoiceId }).update({ amount: '1' })).rejects.toThrow(/append-only/);
    await expect(db('invoice_payment_applications').where({ invoice_id: inv.invoiceId }).del()).rejects.toThrow(/append-only/);
  });

  it('writes an invoice off once, with who, when and why; it becomes uncollectible', async () => {
    const inv = await postpaidInvoice('Write-off Co');
    await call('POST', `/billing/invoices/${inv.invoiceId}/payments`, { amount: '19.00', paidOn: today(), reference: `TR-${randomUUID().slice(0, 8)}` });
    const r = await runCliJson(['invoices', 'write-off', inv.invoiceId, '--reason', 'customer insolvent, claim filed'], env);
    expect(r.applied).toBe(true);
    expect(r.payment).toEqual({ status: 'uncollectible', amountPaid: '19.00', outstanding: '0.00', daysOverdue: 0 });
    expect(r.writeOff).toMatchObject({ amount: '100.00', reason: 'customer insolvent, claim filed', writtenOffBy: expect.stringMatching(/^cli:/) });
    const repeat = await call('POST', `/billing/invoices/${inv.invoiceId}/write-off`, { reason: 'again' });
    expect(repeat.status).toBe(201);
    expect(repeat.body.applied).toBe(false);
    expect(repeat.body.writeOff.reason).toBe('customer insolvent, claim filed');
    expect(await db('invoice_write_offs').where({ invoice_id: inv.invoiceId })).toHaveLength(1);
    const aging = await call('GET', `/billing/receivables/aging?accountId=${inv.accountId}`);
    expect(aging.body.accounts).toEqual([]);
  });

  it('a voided invoice is void and takes no payment', async () => {
    const inv = await postpaidInvoice('Void Co');
    const v = await call('POST', `/billing/invoices/${inv.invoiceId}/void`, { reason: 'issued in error' });
    expect(v.status).toBe(201);
    expect((await call('GET', `/billing/invoices/${inv.invoiceId}/payments`)).body.payment.status).toBe('void');
    const pay = await call('POST', `/billing/invoices/${inv.invoiceId}/payments`, { amount: '5.00', paidOn: today(), reference: `TR-${randomUUID().slice(0, 8)}` });
    expect(pay.status).toBe(409);
  });
});

describe('retention', () => {
  it('expiry deletes an invoice with its applications and write-off; nothing else may', async () => {
    const inv = await postpaidInvoice('Expiring Co');
    await call('POST', `/billing/invoices/${inv.invoiceId}/payments`, { amount: '9.00', paidOn: today(), reference: `TR-${randomUUID().slice(0, 8)}` });
    await call('POST', `/billing/invoices/${inv.invoiceId}/write-off`, { reason: 'small balance' });
    await expect(db('invoice_write_offs').where({ invoice_id: inv.invoiceId }).del()).rejects.toThrow(/append-only/);
    await db.transaction(async (trx) => {
      await allowRetentionDeletes(trx);
      await deleteInvoices(trx, [inv.invoiceId]);
    });
    expect(await db('invoices').where({ id: inv.invoiceId })).toHaveLength(0);
    expect(await db('invoice_payment_applications').where({ invoice_id: inv.invoiceId })).toHaveLength(0);
    expect(await db('invoice_write_offs').where({ invoice_id: inv.invoiceId })).toHaveLength(0);
  });
});

describe('receivables aging', () => {
  it('buckets outstanding amounts by days overdue, matching the invoices, in the API and the CLI (JSON, CSV)', async () => {
    const open = await postpaidInvoice('Aging Co');
    const partial = await postpaidInvoice('Aging Partial Co');
    await call('POST', `/billing/invoices/${partial.invoiceId}/payments`, { amount: '20.00', paidOn: today(), reference: `TR-${randomUUID().slice(0, 8)}` });

    // Today: not yet due.
    const now = await call('GET', `/billing/receivables/aging?accountId=${open.accountId}`);
    expect(now.status).toBe(200);
    expect(now.body.accounts).toEqual([expect.objectContaining({ accountId: open.accountId, invoices: 1, current: '119.00', total: '119.00' })]);

    // 45 days after the due date: 31-60; the overdue status agrees.
    const asOf = addDays(open.dueDate, 45);
    const later = await call('GET', `/billing/receivables/aging?asOf=${asOf}`);
    expect(later.status).toBe(200);
    const rows = later.body.accounts.filter((a: { accountId: string }) => [open.accountId, partial.accountId].includes(a.accountId));
    expect(rows).toEqual([
      expect.objectContaining({ accountId: open.accountId, current: '0.00', days31to60: '119.00', total: '119.00' }),
      expect.objectContaining({ accountId: partial.accountId, days31to60: '99.00', total: '99.00' }),
    ]);
    // The totals are the sum of the accounts.
    const usd = later.body.totals.find((t: { currency: string }) => t.currency === 'USD');
    const sum = later.body.accounts.reduce((s: number, a: { total: string }) => s + Math.round(Number(a.total) * 100), 0);
    expect(Math.round(Number(usd.total) * 100)).toBe(sum);
    // Before the invoices were issued, they are not receivables.
    const before = await call('GET', `/billing/receivables/aging?asOf=2026-10-31&accountId=${open.accountId}`);
    expect(before.body.accounts).toEqual([]);

    const cli = await runCliJson(['invoices', 'aging', '--as-of', addDays(open.dueDate, 100), '--account', partial.accountId], env);
    expect(cli.accounts).toEqual([expect.objectContaining({ accountId: partial.accountId, over90: '99.00', total: '99.00' })]);
    const csv = await runCli(['invoices', 'aging', '--csv', '--as-of', addDays(open.dueDate, 10), '--account', open.accountId], env);
    expect(csv.code).toBe(0);
    expect(csv.stdout.trim().split('\n')).toEqual([
      'account_id,account_name,currency,invoices,current,days1to30,days31to60,days61to90,over90,total',
      expect.stringMatching(new RegExp(`^${open.accountId},Aging Co [0-9a-f]{6},USD,1,0.00,119.00,0.00,0.00,0.00,119.00$`)),
      'TOTAL,,USD,1,0.00,119.00,0.00,0.00,0.00,119.00',
    ]);
    const apiCsv = await call('GET', `/billing/receivables/aging?format=csv&accountId=${open.accountId}`);
    expect(apiCsv.type).toContain('text/csv');
    expect(apiCsv.text.split('\n')[2]).toBe('TOTAL,,USD,1,119.00,0.00,0.00,0.00,0.00,119.00');
  });
});
