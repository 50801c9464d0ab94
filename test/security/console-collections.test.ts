import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminApp } from '../../src/admin/app';
import { systemClock } from '../../src/clock';
import { staffService } from '../../src/staff/staff.service';
import { silentLogger, testConfig, testDb } from '../helpers/env';
import { postpaidInvoiceFactory } from '../helpers/postpaidInvoice';
import { serve } from '../helpers/servers';

/**
 * Attacks on the console's collections forms (docs/console.md,
 * "Collections"), over HTTP: compliance staff trying billing's forms, a form
 * posted from another site without the session's CSRF token, markup typed
 * into a reason, a form aimed at another account's invoice, and oversized
 * input. Each is refused before anything is written, or shown as text.
 */
const config = testConfig();
const db = testDb(config);
const PASSWORD = 'correct horse battery staple';
let base: string;
let close: () => Promise<void>;
let postpaidInvoice: Awaited<ReturnType<typeof postpaidInvoiceFactory>>;
const emails: Record<'billing' | 'compliance', string> = { billing: '', compliance: '' };
const today = new Date().toISOString().slice(0, 10);

beforeAll(async () => {
  postpaidInvoice = await postpaidInvoiceFactory(db, config);
  const app = createAdminApp({ db, billing: config.billing, config, clock: systemClock, logger: silentLogger, readiness: {}, readyCheckTimeoutMs: 1000 });
  ({ url: base, close } = await serve(app));
  for (const role of ['billing', 'compliance'] as const) {
    emails[role] = `${role}-${randomUUID().slice(0, 8)}@mixroute.example`;
    await staffService({ db }).createUser({ email: emails[role], name: `Staff ${role}`, role, password: PASSWORD });
  }
});
afterAll(async () => {
  await close();
  await db.destroy();
});

function browser() {
  const jar = new Map<string, string>();
  const request = async (method: 'GET' | 'POST', path: string, form?: Record<string, string>, headers: Record<string, string> = {}) => {
    const res = await fetch(base + path, {
      method,
      redirect: 'manual',
      headers: {
        ...headers,
        ...(jar.size ? { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') } : {}),
        ...(form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
      },
      body: form ? new URLSearchParams(form).toString() : undefined,
    });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const [name, ...value] = pair!.split('=');
      jar.set(name!.trim(), value.join('='));
    }
    return { status: res.status, location: res.headers.get('location') ?? '', body: await res.text() };
  };
  return {
    get: (path: string) => request('GET', path),
    post: (path: string, form: Record<string, string>, headers?: Record<string, string>) => request('POST', path, form, headers),
  };
}

const hidden = (html: string, name: string) => new RegExp(`name="${name}" value="([^"]*)"`).exec(html)?.[1] ?? '';

async function signedIn(role: 'billing' | 'compliance') {
  const b = browser();
  const form = await b.get('/console/login');
  const r = await b.post('/console/login', { _csrf: hidden(form.body, '_csrf'), next: '/console', email: emails[role], password: PASSWORD });
  expect(r.status).toBe(303);
  return b;
}

/** Nothing the collections forms write exists for the account. */
async function nothingWritten(inv: { accountId: string; invoiceId: string }) {
  expect(await db('invoice_payment_applications').where({ invoice_id: inv.invoiceId })).toHaveLength(0);
  expect(await db('invoice_write_offs').where({ invoice_id: inv.invoiceId })).toHaveLength(0);
  expect(await db('dunning_pauses').where({ account_id: inv.accountId })).toHaveLength(0);
  expect(await db('account_suspensions').where({ account_id: inv.accountId }).whereNotNull('reinstated_at')).toHaveLength(0);
}

/** Every collections form of an account and invoice, with valid fields. */
const forms = (inv: { accountId: string; invoiceId: string }) => {
  const page = `/console/accounts/${inv.accountId}`;
  return [
    [`${page}/dunning/pause`, { reason: 'pausing without the right' }],
    [`${page}/dunning/resume`, {}],
    [`${page}/reinstate`, { reason: 'reinstating without the right' }],
    [`${page}/invoices/${inv.invoiceId}/payments`, { amount: '10.00', paidOn: today, reference: `SEC-${randomUUID().slice(0, 8)}` }],
    [`${page}/invoices/${inv.invoiceId}/write-off`, { reason: 'writing off without the right' }],
  ] as const;
};

async function suspended(inv: { accountId: string; invoiceId: string }) {
  await db('account_suspensions').insert({ account_id: inv.accountId, invoice_id: inv.invoiceId, reason: 'invoice unpaid', suspended_by: `dunning:${inv.invoiceId}` });
  await db('accounts').where({ id: inv.accountId }).update({ status: 'suspended' });
}

describe('roles', () => {
  it('compliance staff get 403 on every collections form and page, and nothing is written', async () => {
    const inv = await postpaidInvoice('Sec Roles');
    await suspended(inv);
    const cora = await signedIn('compliance');
    const accountPage = await cora.get(`/console/accounts/${inv.accountId}`);
    expect(accountPage.status).toBe(403);
    expect(accountPage.body).not.toContain('Collections');
    expect((await cora.get('/console/receivables')).status).toBe(403);
    expect((await cora.get('/console/receivables.csv')).status).toBe(403);
    // With their own session's valid CSRF token (from the page they may see).
    const csrf = hidden((await cora.get('/console/dsr')).body, '_csrf');
    expect(csrf).not.toBe('');
    for (const [path, fields] of forms(inv)) {
      const r = await cora.post(path, { _csrf: csrf, ...fields });
      expect(r.status, path).toBe(403);
    }
    await nothingWritten(inv);
    expect((await db('accounts').where({ id: inv.accountId }).first()).status).toBe('suspended');
    // Their navigation has no receivables link.
    expect((await cora.get('/console/dsr')).body).not.toContain('/console/receivables');
  });

  it('signed-out requests go to sign-in and write nothing', async () => {
    const inv = await postpaidInvoice('Sec Anonymous');
    for (const [path, fields] of forms(inv)) {
      const r = await browser().post(path, { ...fields });
      expect(r.status, path).toBe(303);
      expect(r.location).toMatch(/^\/console\/login/);
    }
    const page = await browser().get('/console/receivables');
    expect(page.status).toBe(303);
    await nothingWritten(inv);
  });
});

describe('CSRF', () => {
  it('refuses every collections form posted without the session token, or with a wrong one', async () => {
    const inv = await postpaidInvoice('Sec CSRF');
    await suspended(inv);
    const billie = await signedIn('billing');
    const real = hidden((await billie.get(`/console/accounts/${inv.accountId}`)).body, '_csrf');
    expect(real).not.toBe('');
    // Another session's token is no good either.
    const other = hidden((await (await signedIn('billing')).get('/console/accounts')).body, '_csrf');
    expect(other).not.toBe(real);
    for (const [path, fields] of forms(inv)) {
      const missing = await billie.post(path, { ...fields });
      expect(missing.status, path).toBe(403);
      expect(missing.body).toContain('CSRF');
      expect((await billie.post(path, { ...fields, _csrf: other })).status, path).toBe(403);
      expect((await billie.post(path, { ...fields }, { 'x-csrf-token': 'x'.repeat(real.length) })).status, path).toBe(403);
    }
    await nothingWritten(inv);
    expect((await db('accounts').where({ id: inv.accountId }).first()).status).toBe('suspended');
  });
});

describe('what staff type in', () => {
  it('markup in a pause, write-off or reinstatement reason is shown as text on the account page', async () => {
    const inv = await postpaidInvoice('Sec Markup');
    await suspended(inv);
    const billie = await signedIn('billing');
    const page = `/console/accounts/${inv.accountId}`;
    const csrf = hidden((await billie.get(page)).body, '_csrf');
    const evil = `<script>alert(1)</script><img src=x onerror="alert(2)">`;
    expect((await billie.post(`${page}/dunning/pause`, { _csrf: csrf, reason: `disputed ${evil}` })).status).toBe(303);
    expect((await billie.post(`${page}/invoices/${inv.invoiceId}/write-off`, { _csrf: csrf, reason: `gone ${evil}` })).status).toBe(303);
    const shown = await billie.get(page);
    expect(shown.status).toBe(200);
    expect(shown.body).not.toContain('<script>alert(1)');
    expect(shown.body).not.toContain('<img src=x');
    expect(shown.body).toContain('disputed &lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=&quot;alert(2)&quot;&gt;');
    expect(shown.body).toContain('gone &lt;script&gt;alert(1)&lt;/script&gt;');
    // Stored as typed, escaped only on the page.
    expect((await db('dunning_pauses').where({ account_id: inv.accountId }).first()).reason).toBe(`disputed ${evil}`);
    // A suspension reason (written by the dunning workflow or staff) is escaped too.
    await db('account_suspensions').where({ account_id: inv.accountId }).update({ reason: `unpaid ${evil}` });
    const again = await billie.get(page);
    expect(again.body).not.toContain('<script>alert(1)');
    expect(again.body).toContain('unpaid &lt;script&gt;');
  });

  it('a form aimed at another account’s invoice is refused, and nothing is written', async () => {
    const mine = await postpaidInvoice('Sec Mine');
    const theirs = await postpaidInvoice('Sec Theirs');
    const billie = await signedIn('billing');
    const page = `/console/accounts/${mine.accountId}`;
    const csrf = hidden((await billie.get(page)).body, '_csrf');
    const pay = await billie.post(`${page}/invoices/${theirs.invoiceId}/payments`, { _csrf: csrf, amount: '10.00', paidOn: today, reference: 'SEC-CROSS-1' });
    expect(pay.status).toBe(404);
    const wo = await billie.post(`${page}/invoices/${theirs.invoiceId}/write-off`, { _csrf: csrf, reason: 'not this account’s invoice' });
    expect(wo.status).toBe(404);
    await nothingWritten(theirs);
    // Not an id at all: a message, not a stack trace.
    const junk = await billie.post(`${page}/invoices/${encodeURIComponent("1' OR '1'='1")}/write-off`, { _csrf: csrf, reason: 'injection attempt' });
    expect(junk.status).toBe(400);
    expect(junk.body).toContain('must be an invoice id');
    expect(junk.body).not.toMatch(/at .*\.ts:\d+/);
  });

  it('oversized, malformed and extra input is refused with a message and writes nothing', async () => {
    const inv = await postpaidInvoice('Sec Bounds');
    await suspended(inv);
    const billie = await signedIn('billing');
    const page = `/console/accounts/${inv.accountId}`;
    const csrf = hidden((await billie.get(page)).body, '_csrf');
    const cases: [string, Record<string, string>, string][] = [
      [`${page}/dunning/pause`, { reason: 'x'.repeat(501) }, 'at most 500 characters'],
      [`${page}/reinstate`, { reason: 'y'.repeat(5000) }, 'at most 500 characters'],
      [`${page}/invoices/${inv.invoiceId}/write-off`, { reason: 'z' }, 'at least 3 characters'],
      [`${page}/invoices/${inv.invoiceId}/payments`, { amount: '1e9', paidOn: today, reference: 'SEC-B-1' }, 'amount must be a decimal string'],
      [`${page}/invoices/${inv.invoiceId}/payments`, { amount: '10000000000.00', paidOn: today, reference: 'SEC-B-2' }, 'amount must be at most'],
      [`${page}/invoices/${inv.invoiceId}/payments`, { amount: '10.00', paidOn: '2026-02-30', reference: 'SEC-B-3' }, 'paidOn must be a date'],
      [`${page}/invoices/${inv.invoiceId}/payments`, { amount: '10.00', paidOn: today, reference: '<b>ref</b>' }, 'reference may hold'],
      [`${page}/invoices/${inv.invoiceId}/payments`, { amount: '10.00', paidOn: today, reference: 'R'.repeat(101) }, 'at most 100 characters'],
      [`/console/accounts/not-an-account/dunning/pause`, { reason: 'valid reason here' }, 'must be an account id'],
    ];
    for (const [path, fields, message] of cases) {
      const r = await billie.post(path, { _csrf: csrf, ...fields });
      expect(r.status, `${path} ${JSON.stringify(fields).slice(0, 60)}`).toBe(400);
      expect(r.body, path).toContain(message);
      expect(r.body).not.toMatch(/at .*\.ts:\d+/);
      expect(r.body).not.toContain('<b>ref</b>');
    }
    // A body over the console's 64 kB limit is refused before any handler.
    const huge = await billie.post(`${page}/dunning/pause`, { _csrf: csrf, reason: 'r'.repeat(70_000) });
    expect(huge.status).toBe(413);
    expect(huge.body).not.toMatch(/at .*\.(ts|js):\d+/);
    await nothingWritten(inv);
    // An unknown as-of date on the receivables page: a message.
    const asOf = await billie.get(`/console/receivables?asOf=${encodeURIComponent('<script>')}`);
    expect(asOf.status).toBe(400);
    expect(asOf.body).not.toContain('<script>');
  });
});
