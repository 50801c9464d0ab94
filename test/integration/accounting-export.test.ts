import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminApp } from '../../src/admin/app';
import { systemClock } from '../../src/clock';
import type { Db } from '../../src/db/knex';
import { accountingExportService } from '../../src/invoicing/accountingExport.service';
import { EXPORT_COLUMNS } from '../../src/invoicing/accountingExport.rules';
import { invoicingService } from '../../src/invoicing/invoicing.service';
import { Money } from '../../src/shared/money.rules';
import { staffService } from '../../src/staff/staff.service';
import { runCli, runCliJson } from '../helpers/cli';
import { silentLogger, testConfig, testEnv } from '../helpers/env';
import { closeOwnStack, openOwnStack, ownDatabaseUrl } from '../helpers/ownDatabase';
import { postpaidInvoiceFactory } from '../helpers/postpaidInvoice';
import { serve } from '../helpers/servers';

/**
 * The accountants' export (docs/collections.md, "Export for the accountants")
 * against real invoices: a partly paid one, one overpaid by a bank transfer,
 * one written off, one voided by a credit note. Its rows and totals are
 * checked against the database. The export covers every account, so this
 * file has a database of its own.
 */
const config = testConfig({ DATABASE_URL: ownDatabaseUrl('export') });
const env = testEnv(config);
let db: Db;
let closeStack: () => Promise<void>;
let base: string;
let closeServer: () => Promise<void>;
let token: string;

const today = new Date().toISOString().slice(0, 10);
const month = today.slice(0, 7);
const addDays = (d: string, n: number) => new Date(Date.parse(`${d}T00:00:00Z`) + n * 86_400_000).toISOString().slice(0, 10);
const parsed = (csv: string) => parse(csv, { columns: true }) as Record<string, string>[];
const cents = (v: string) => new Money(v).toFixed(2);

interface World {
  partly: { invoiceId: string; number: string; accountId: string };
  overpaid: { invoiceId: string; number: string; accountId: string };
  writtenOff: { invoiceId: string; number: string; accountId: string };
  voided: { invoiceId: string; number: string; accountId: string };
  creditNoteNumber: string;
  refs: { partly: string; overpaid: string };
}
let world: World;

beforeAll(async () => {
  const stack = await openOwnStack(config);
  db = stack.db;
  closeStack = () => closeOwnStack(config, stack);
  const postpaidInvoice = await postpaidInvoiceFactory(db, config);
  const invoicing = invoicingService({ db, clock: systemClock, config });
  const tag = randomUUID().slice(0, 6);
  const partly = await postpaidInvoice('Partly Paid');
  const overpaid = await postpaidInvoice('Overpaid');
  const writtenOff = await postpaidInvoice('Written Off');
  const voided = await postpaidInvoice('Voided');
  const refs = { partly: `NL-${tag}-1`, overpaid: `NL-${tag}-2` };
  await invoicing.payments.recordPayment(partly.invoiceId, { amount: '50.00', paidOn: today, reference: refs.partly }, 'cli:test');
  await invoicing.payments.recordPayment(overpaid.invoiceId, { amount: '150.00', paidOn: today, reference: refs.overpaid }, 'cli:test');
  await invoicing.payments.writeOff(writtenOff.invoiceId, { reason: 'customer insolvent' }, 'cli:test');
  const cn = await invoicing.invoices.void({ id: voided.invoiceId, reason: 'issued in error' }, 'cli:test');
  world = { partly, overpaid, writtenOff, voided, creditNoteNumber: cn.creditNoteNumber, refs };

  const app = createAdminApp({ db, billing: config.billing, config, clock: systemClock, logger: silentLogger, readiness: {}, readyCheckTimeoutMs: 1000 });
  ({ url: base, close: closeServer } = await serve(app));
  token = (await staffService({ db }).createStaffToken({ role: 'billing' })).token;
}, 120_000);

afterAll(async () => {
  await closeServer?.();
  await closeStack?.();
});

const get = (p: string) => fetch(base + p, { headers: { authorization: `Bearer ${token}` } });

describe("the accountants' export", () => {
  let apiCsv: string;

  it('lists the period\'s invoices, credit note, applications and write-off, matching the database row by row and in total', async () => {
    const res = await get(`/billing/exports/accounting?period=${month}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    expect(res.headers.get('content-disposition')).toBe(`attachment; filename="accounting-${month}.csv"`);
    apiCsv = await res.text();
    expect(apiCsv.split('\n')[0]).toBe(EXPORT_COLUMNS.join(','));
    const rows = parsed(apiCsv);
    const of = (t: string) => rows.filter((r) => r.record_type === t);
    expect(of('invoice')).toHaveLength(4);
    expect(of('credit_note')).toHaveLength(1);
    expect(of('payment_application')).toHaveLength(2);
    expect(of('write_off')).toHaveLength(1);
    expect(rows.map((r) => r.record_type)).toEqual(['invoice', 'invoice', 'invoice', 'invoice', 'credit_note', 'payment_application', 'payment_application', 'write_off']);

    // Every invoice and credit note as stored.
    const docs = await db('invoices').whereNotNull('number').orderBy('issued_at');
    expect(docs).toHaveLength(5);
    for (const d of docs) {
      const row = rows.find((r) => r.record_id === d.id)!;
      expect(row, d.number).toMatchObject({
        record_type: d.kind,
        number: d.number,
        date: today,
        account_id: d.account_id,
        account_name: d.customer.name,
        currency: 'USD',
        plan: 'postpaid',
        net: cents(d.subtotal),
        tax: cents(d.tax_amount),
        total: cents(d.total),
        amount_due: cents(d.amount_due),
        due_date: d.due_date ?? '',
      });
    }
    const inv = (id: string) => rows.find((r) => r.record_type === 'invoice' && r.record_id === id)!;
    expect(inv(world.partly.invoiceId)).toMatchObject({ status_at_period_end: 'partially_paid', paid_at_period_end: '50.00', outstanding_at_period_end: '69.00', invoice_number: world.partly.number });
    expect(inv(world.overpaid.invoiceId)).toMatchObject({ status_at_period_end: 'paid', paid_at_period_end: '119.00', outstanding_at_period_end: '0.00' });
    expect(inv(world.writtenOff.invoiceId)).toMatchObject({ status_at_period_end: 'uncollectible', outstanding_at_period_end: '0.00' });
    expect(inv(world.voided.invoiceId)).toMatchObject({ status_at_period_end: 'void' });
    expect(of('credit_note')[0]).toMatchObject({ number: world.creditNoteNumber, invoice_id: world.voided.invoiceId, invoice_number: world.voided.number, total: '-119.00', memo: 'issued in error (cli:test)' });

    // Every application as stored, with the part credited to the account.
    const apps = await db('invoice_payment_applications').orderBy('reference');
    expect(apps).toHaveLength(2);
    for (const a of apps) {
      const row = rows.find((r) => r.record_id === a.id)!;
      expect(row).toMatchObject({
        record_type: 'payment_application',
        date: a.paid_on,
        account_id: a.account_id,
        invoice_id: a.invoice_id,
        amount: cents(a.amount),
        received: cents(a.received_amount),
        credited_to_account: cents(new Money(a.received_amount).minus(a.amount).toFixed()),
        source: 'bank_transfer',
        reference: a.reference,
        recorded_by: 'cli:test',
      });
    }
    expect(rows.find((r) => r.reference === world.refs.overpaid)).toMatchObject({ amount: '119.00', received: '150.00', credited_to_account: '31.00', invoice_number: world.overpaid.number });
    const wo = await db('invoice_write_offs').first();
    expect(of('write_off')[0]).toMatchObject({ record_id: world.writtenOff.invoiceId, invoice_number: world.writtenOff.number, amount: cents(wo.amount), memo: 'customer insolvent', recorded_by: 'cli:test', date: today });

    // Totals: the export's sums are the database's.
    const sum = (rs: Record<string, string>[], col: string) => rs.reduce((s, r) => s.plus(r[col] || '0'), new Money(0)).toFixed(2);
    const db2 = async (sql: string) => cents((await db.raw(sql)).rows[0].s ?? '0');
    expect(sum(of('invoice'), 'total')).toBe(await db2(`SELECT sum(total) AS s FROM invoices WHERE kind = 'invoice' AND number IS NOT NULL`));
    expect(sum(of('invoice'), 'net')).toBe(await db2(`SELECT sum(subtotal) AS s FROM invoices WHERE kind = 'invoice' AND number IS NOT NULL`));
    expect(sum(of('invoice'), 'tax')).toBe(await db2(`SELECT sum(tax_amount) AS s FROM invoices WHERE kind = 'invoice' AND number IS NOT NULL`));
    expect(sum(of('credit_note'), 'total')).toBe(await db2(`SELECT sum(total) AS s FROM invoices WHERE kind = 'credit_note'`));
    expect(sum(of('payment_application'), 'amount')).toBe(await db2(`SELECT sum(amount) AS s FROM invoice_payment_applications`));
    expect(sum(of('payment_application'), 'credited_to_account')).toBe(await db2(`SELECT sum(amount) AS s FROM ledger_entries WHERE reference_type = 'invoice_payment'`));
    expect(sum(of('write_off'), 'amount')).toBe(await db2(`SELECT sum(amount) AS s FROM invoice_write_offs`));
    expect(sum(of('invoice'), 'total')).toBe('476.00');
  });

  it('pages through the rows without losing or repeating one, whatever the page size', async () => {
    for (const pageSize of [1, 2, 3]) {
      const exp = await accountingExportService({ db, clock: systemClock, pageSize }).csv({ period: month });
      let csv = '';
      let chunks = 0;
      for await (const c of exp.chunks) {
        csv += c;
        chunks += 1;
      }
      expect(csv, `page size ${pageSize}`).toBe(apiCsv);
      // The header, then one chunk per page.
      expect(chunks).toBeGreaterThanOrEqual(1 + Math.ceil(4 / pageSize) + Math.ceil(2 / pageSize) + 2);
      expect(exp.summary.invoice).toEqual({ records: 4, amounts: { USD: '476.00' } });
      expect(exp.summary.payment_application).toEqual({ records: 2, amounts: { USD: '169.00' } });
    }
  });

  it('selects by date: an earlier range has none of it, a range of today has all of it', async () => {
    const before = await get(`/billing/exports/accounting?from=${addDays(today, -30)}&to=${addDays(today, -1)}`);
    expect(before.status).toBe(200);
    expect(before.headers.get('content-disposition')).toContain(`accounting-${addDays(today, -30)}_${addDays(today, -1)}.csv`);
    expect(await before.text()).toBe(`${EXPORT_COLUMNS.join(',')}\n`);
    const day = await get(`/billing/exports/accounting?from=${today}&to=${today}`);
    expect(await day.text()).toBe(apiCsv);
  });

  it('writes the same CSV from the CLI, to stdout or to a file with its control totals', async () => {
    const out = await runCli(['invoices', 'export', '--from', `${month}-01`, '--to', today], env);
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout).toBe(apiCsv);

    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'export-')), 'books.csv');
    const summary = await runCliJson(['invoices', 'export', '--period', month, '--output', file], env);
    expect(fs.readFileSync(file, 'utf8')).toBe(apiCsv);
    expect(fs.existsSync(`${file}.partial`)).toBe(false);
    expect(summary).toMatchObject({ file, from: `${month}-01`, invoice: { records: 4, amounts: { USD: '476.00' } }, credit_note: { records: 1, amounts: { USD: '-119.00' } }, write_off: { records: 1 } });
    const human = await runCli(['invoices', 'export', '--period', month, '--output', file], env);
    expect(human.stdout).toContain(`wrote ${file}`);
    expect(human.stdout).toMatch(/payment_application\s+2\s+169\.00 USD/);
  });
});
