import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminApp } from '../../src/admin/app';
import { systemClock } from '../../src/clock';
import { staffService } from '../../src/staff/staff.service';
import { silentLogger, testConfig, testDb } from '../helpers/env';
import { postpaidInvoiceFactory } from '../helpers/postpaidInvoice';
import { serve } from '../helpers/servers';

/**
 * Who may record payments and write invoices off, and what they may type in
 * (docs/collections.md): only billing staff and admins; amounts, dates and
 * references are bounded and refused with a problem document before anything
 * is written.
 */
const config = testConfig();
const db = testDb(config);
let base: string;
let close: () => Promise<void>;
const tokens: Record<string, string> = {};
let inv: { accountId: string; invoiceId: string };
const today = new Date().toISOString().slice(0, 10);

beforeAll(async () => {
  const make = await postpaidInvoiceFactory(db, config);
  inv = await make('Bounds Collections Co');
  const app = createAdminApp({ db, billing: config.billing, config, clock: systemClock, logger: silentLogger, readiness: {}, readyCheckTimeoutMs: 1000 });
  ({ url: base, close } = await serve(app));
  for (const role of ['billing', 'compliance'] as const) tokens[role] = (await staffService({ db }).createStaffToken({ role })).token;
});
afterAll(async () => {
  await close();
  await db.destroy();
});

async function call(role: string, method: 'GET' | 'POST', path: string, body?: unknown) {
  const res = await fetch(base + path, {
    method,
    headers: { authorization: `Bearer ${tokens[role]}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, type: res.headers.get('content-type') ?? '', body: text ? JSON.parse(text) : undefined };
}

const nothingWritten = async () => {
  expect(await db('invoice_payment_applications').where({ invoice_id: inv.invoiceId })).toHaveLength(0);
  expect(await db('invoice_write_offs').where({ invoice_id: inv.invoiceId })).toHaveLength(0);
  expect(await db('ledger_entries').where({ account_id: inv.accountId, reference_type: 'invoice_payment' })).toHaveLength(0);
};

describe('roles', () => {
  it('compliance staff cannot record payments, write off, or read receivables', async () => {
    const pay = await call('compliance', 'POST', `/billing/invoices/${inv.invoiceId}/payments`, { amount: '10.00', paidOn: today, reference: 'ROLE-1' });
    expect(pay.status).toBe(403);
    expect(pay.type).toContain('application/problem+json');
    expect((await call('compliance', 'POST', `/billing/invoices/${inv.invoiceId}/write-off`, { reason: 'not mine to decide' })).status).toBe(403);
    expect((await call('compliance', 'GET', '/billing/receivables/aging')).status).toBe(403);
    expect((await call('compliance', 'GET', `/billing/invoices/${inv.invoiceId}/payments`)).status).toBe(403);
    const anon = await fetch(`${base}/billing/receivables/aging`);
    expect(anon.status).toBe(401);
    await nothingWritten();
  });
});

describe('bounds', () => {
  const bad: [string, Record<string, unknown>, RegExp][] = [
    ['negative amount', { amount: '-10.00', paidOn: today, reference: 'B-1' }, /amount must be positive/],
    ['zero amount', { amount: '0', paidOn: today, reference: 'B-2' }, /amount must be positive/],
    ['huge amount', { amount: '99999999999999', paidOn: today, reference: 'B-3' }, /at most 1000000000/],
    ['sub-cent amount', { amount: '10.001', paidOn: today, reference: 'B-4' }, /at most 2 decimal places/],
    ['number, not string', { amount: 10, paidOn: today, reference: 'B-5' }, /decimal string/],
    ['exponent', { amount: '1e3', paidOn: today, reference: 'B-6' }, /decimal string/],
    ['long reference', { amount: '10.00', paidOn: today, reference: 'R'.repeat(101) }, /at most 100 characters/],
    ['empty reference', { amount: '10.00', paidOn: today, reference: '   ' }, /reference must not be empty/],
    ['control characters in reference', { amount: '10.00', paidOn: today, reference: 'ab\u0000cd' }, /reference may hold/],
    ['impossible date', { amount: '10.00', paidOn: '2026-02-30', reference: 'B-7' }, /paidOn must be a date/],
    ['not a date', { amount: '10.00', paidOn: 'yesterday', reference: 'B-8' }, /paidOn must be a date/],
    ['timestamp', { amount: '10.00', paidOn: '2026-01-01T00:00:00Z', reference: 'B-9' }, /paidOn must be a date/],
    ['future date', { amount: '10.00', paidOn: '2999-01-01', reference: 'B-10' }, /future/],
    ['unknown field', { amount: '10.00', paidOn: today, reference: 'B-11', invoiceId: randomUUID() }, /unknown field/],
    ['missing fields', {}, /amount/],
  ];
  it.each(bad)('refuses a payment with %s as a problem (400)', async (_name, body, message) => {
    const r = await call('billing', 'POST', `/billing/invoices/${inv.invoiceId}/payments`, body);
    expect(r.status).toBe(400);
    expect(r.type).toContain('application/problem+json');
    expect(JSON.stringify(r.body)).toMatch(message);
    await nothingWritten();
  });

  it('refuses a body that is not an object, a bad invoice id, and write-offs without a real reason', async () => {
    for (const body of [[], 'x', null]) {
      const r = await call('billing', 'POST', `/billing/invoices/${inv.invoiceId}/payments`, body);
      expect(r.status).toBe(400);
      expect(r.type).toContain('application/problem+json');
    }
    expect((await call('billing', 'POST', '/billing/invoices/not-a-uuid/payments', { amount: '1.00', paidOn: today, reference: 'B-12' })).status).toBe(400);
    expect((await call('billing', 'POST', `/billing/invoices/${randomUUID()}/payments`, { amount: '1.00', paidOn: today, reference: 'B-13' })).status).toBe(404);
    for (const body of [{}, { reason: 'x' }, { reason: 'y'.repeat(501) }, { reason: 'ok reason', amount: '1' }]) {
      const r = await call('billing', 'POST', `/billing/invoices/${inv.invoiceId}/write-off`, body);
      expect(r.status).toBe(400);
      expect(r.type).toContain('application/problem+json');
    }
    for (const q of ['asOf=2026-13-01', 'asOf=x', 'accountId=1', 'format=xml', 'limit=5']) {
      const r = await call('billing', 'GET', `/billing/receivables/aging?${q}`);
      expect(r.status, q).toBe(400);
      expect(r.type).toContain('application/problem+json');
    }
    await nothingWritten();
  });
});
