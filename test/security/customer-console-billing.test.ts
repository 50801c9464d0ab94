import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminApp } from '../../src/admin/app';
import { systemClock } from '../../src/clock';
import type { Config } from '../../src/config';
import { browser as makeBrowser, csrfOf, customerWithPassword, signedIn, signIn } from '../helpers/customerConsole';
import { silentLogger, testConfig, testDb } from '../helpers/env';
import { startFakeStripe, type FakeStripe } from '../helpers/fakeStripe';
import { postpaidInvoiceFactory } from '../helpers/postpaidInvoice';
import { serve } from '../helpers/servers';

/**
 * Attacks on the customer console's Billing page (/app/billing): amounts made
 * to slip past the checks, another account's invoice or account id in a form,
 * a post without the session's CSRF token, and markup in a company name. The
 * payment provider is the local stand-in, so every call it gets is counted.
 */
const PASSWORD = 'correct horse battery staple';
const dbConfig = testConfig();
const db = testDb(dbConfig);
let config: Config;
let fake: FakeStripe;
let base: string;
let close: () => Promise<void>;
let lastOctet = 0;
let postpaidInvoice: Awaited<ReturnType<typeof postpaidInvoiceFactory>>;

beforeAll(async () => {
  fake = await startFakeStripe();
  config = testConfig({ TRUSTED_PROXIES: 'loopback', STRIPE_SECRET_KEY: fake.secretKey, STRIPE_API_URL: fake.url });
  const app = createAdminApp({ db, billing: config.billing, config, clock: systemClock, logger: silentLogger, readiness: {}, readyCheckTimeoutMs: 1000 });
  ({ url: base, close } = await serve(app));
  postpaidInvoice = await postpaidInvoiceFactory(db, config);
});
afterAll(async () => {
  await close();
  await fake.close();
  await db.destroy();
});

const sessionCalls = () => fake.calls.filter((c) => c.method === 'POST' && c.path === '/v1/checkout/sessions').length;

async function billingMember(opts: { name?: string } = {}) {
  const c = await customerWithPassword(db, config, PASSWORD, opts);
  await db('users').where({ id: c.userId }).update({ console_role: 'billing' });
  const b = makeBrowser(base, { 'x-forwarded-for': `198.51.100.${++lastOctet}` });
  expect(signedIn(await signIn(b, c.email, PASSWORD))).toBe(true);
  return { b, ...c };
}

describe('top-up amounts', () => {
  it('refuses negative, huge, over-precise, non-numeric and malformed amounts with a message, asking the provider nothing', async () => {
    const { b, accountId } = await billingMember();
    const csrf = await csrfOf(b);
    const before = sessionCalls();
    for (const amount of ['-20', '-0.01', '0', '1e9', '1000000000', '10000.01', '1.001', '12.345', 'NaN', 'Infinity', '0x10', '1,000', ' ', '', '5'.repeat(40), '10; DROP TABLE ledger_entries']) {
      const r = await b.post('/app/billing/top-up', { _csrf: csrf, amount });
      expect(r.status, amount).toBe(303);
      expect(r.location, amount).toBe('/app/billing?msg=billing_amount_invalid');
    }
    // The field twice (an array once parsed) and no field at all.
    const twice = await fetch(`${base}/app/billing/top-up`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: [...b.jar].map(([k, v]) => `${k}=${v}`).join('; '), 'x-forwarded-for': `198.51.100.${lastOctet}` },
      body: `_csrf=${encodeURIComponent(csrf)}&amount=10&amount=20`,
    });
    expect(twice.status).toBe(303);
    expect(twice.headers.get('location')).toBe('/app/billing?msg=billing_amount_invalid');
    expect((await b.post('/app/billing/top-up', { _csrf: csrf })).location).toBe('/app/billing?msg=billing_amount_invalid');
    expect(sessionCalls()).toBe(before);
    expect(await db('checkout_sessions').where({ account_id: accountId })).toHaveLength(0);
  });

  it('an account id slipped into the form is ignored: the checkout is for the session account', async () => {
    const { b, accountId } = await billingMember();
    const victim = await customerWithPassword(db, config, PASSWORD);
    const r = await b.post('/app/billing/top-up', { _csrf: await csrfOf(b), amount: '10', accountId: victim.accountId });
    expect(r.status).toBe(303);
    expect(await db('checkout_sessions').where({ account_id: victim.accountId })).toHaveLength(0);
    expect(await db('checkout_sessions').where({ account_id: accountId })).toHaveLength(1);
    expect(r.location).not.toMatch(/secret/i);
  });
});

describe("another account's invoice", () => {
  it('Pay with an invoice id of another account is a 404 like a made-up one, and opens no checkout', async () => {
    const { b } = await billingMember();
    const theirs = await postpaidInvoice('Victim Invoice Co');
    const csrf = await csrfOf(b);
    const before = sessionCalls();
    const other = await b.post('/app/billing/pay', { _csrf: csrf, invoiceId: theirs.invoiceId });
    const none = await b.post('/app/billing/pay', { _csrf: csrf, invoiceId: '00000000-0000-4000-8000-000000000000' });
    const junk = await b.post('/app/billing/pay', { _csrf: csrf, invoiceId: "' OR 1=1 --" });
    for (const r of [other, none, junk]) expect(r.status).toBe(404);
    expect(other.body).toBe(none.body);
    expect(other.body).not.toContain(theirs.number);
    expect(sessionCalls()).toBe(before);
    expect(await db('checkout_sessions').where({ invoice_id: theirs.invoiceId })).toHaveLength(0);
  });
});

describe('forged posts', () => {
  it('without the CSRF token, or with another session’s, top-up and Pay do nothing', async () => {
    const { b, accountId } = await billingMember();
    const other = await billingMember();
    const foreign = await csrfOf(other.b);
    const before = sessionCalls();
    const forms: Record<string, string>[] = [{ amount: '10' }, { amount: '10', _csrf: '' }, { amount: '10', _csrf: foreign }];
    for (const form of forms) {
      expect((await b.post('/app/billing/top-up', form)).status).toBe(403);
    }
    expect((await b.post('/app/billing/pay', { invoiceId: '00000000-0000-4000-8000-000000000000' })).status).toBe(403);
    expect(sessionCalls()).toBe(before);
    expect(await db('checkout_sessions').where({ account_id: accountId })).toHaveLength(0);
    // Signed out: no action at all.
    const anonymous = makeBrowser(base, { 'x-forwarded-for': `198.51.100.${++lastOctet}` });
    expect((await anonymous.post('/app/billing/top-up', { amount: '10' })).status).toBe(303);
    expect((await anonymous.get('/app/billing/invoices/00000000-0000-4000-8000-000000000000.pdf')).location).toBe('/app/login');
  });
});

describe('page content', () => {
  it('escapes markup in the company name; the checkout note is a fixed text; no provider secret on the page', async () => {
    const name = `<script>alert("x")</script> & <img src=x onerror=alert(1)> Co`;
    const { b } = await billingMember({ name });
    const page = await b.get('/app/billing?checkout=<b>pwned</b>&msg=<i>x</i>');
    expect(page.status).toBe(200);
    expect(page.body).not.toContain('<script>alert');
    expect(page.body).not.toContain('<img src=x');
    expect(page.body).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;img src=x onerror=alert(1)&gt; Co');
    expect(page.body).not.toContain('pwned');
    expect(page.body).not.toContain(fake.secretKey);
    expect(page.body).not.toContain('client_secret');
  });
});
