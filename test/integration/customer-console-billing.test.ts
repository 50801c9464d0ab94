import { Client, Connection } from '@temporalio/client';
import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accountsService } from '../../src/accounts/accounts.service';
import { createAdminApp } from '../../src/admin/app';
import { systemClock } from '../../src/clock';
import type { Config } from '../../src/config';
import type { ConsoleRole } from '../../src/customerConsole/customerConsole.rules';
import { customerConsoleService } from '../../src/customerConsole/customerConsole.service';
import { browser as makeBrowser, csrfOf, customerWithPassword, hidden, signedIn, signIn } from '../helpers/customerConsole';
import { silentLogger, testConfig, testDb } from '../helpers/env';
import { startFakeStripe, type FakeStripe } from '../helpers/fakeStripe';
import { postpaidInvoiceFactory } from '../helpers/postpaidInvoice';
import { serve } from '../helpers/servers';
import { withTestWorker } from '../helpers/worker';

/**
 * The customer console's Billing page (/app/billing) over HTTP, with the
 * official Stripe client against the local stand-in (test/helpers/fakeStripe.ts),
 * the admin server's signed payment webhook and a real worker for the top-up
 * workflow: a top-up from the form is paid and credited once, an invoice is
 * listed, downloaded and paid by checkout, and roles and accounts are kept apart.
 */
const SECRET = 'whsec_customer_billing_test';
const PASSWORD = 'correct horse battery staple';
const dbConfig = testConfig();
const db = testDb(dbConfig);
let config: Config;
let fake: FakeStripe;
let connection: Connection;
let base: string;
let close: () => Promise<void>;
let lastOctet = 0;
let postpaidInvoice: Awaited<ReturnType<typeof postpaidInvoiceFactory>>;
const signer = new Stripe('sk_test_unused');

beforeAll(async () => {
  fake = await startFakeStripe();
  config = testConfig({
    TRUSTED_PROXIES: 'loopback',
    PAYMENT_WEBHOOK_SECRET: SECRET,
    PAYMENT_WEBHOOK_TOLERANCE_S: '300',
    STRIPE_SECRET_KEY: fake.secretKey,
    STRIPE_API_URL: fake.url,
  });
  connection = await Connection.connect({ address: config.temporal.address! });
  const client = new Client({ connection, namespace: config.temporal.namespace });
  const app = createAdminApp({ db, billing: config.billing, config, temporal: { client, taskQueue: config.temporal.taskQueue }, clock: systemClock, logger: silentLogger, readiness: {}, readyCheckTimeoutMs: 1000 });
  ({ url: base, close } = await serve(app));
  postpaidInvoice = await postpaidInvoiceFactory(db, config);
});
afterAll(async () => {
  await close();
  await connection.close();
  await fake.close();
  await db.destroy();
});

const browser = () => makeBrowser(base, { 'x-forwarded-for': `203.0.113.${++lastOctet}` });
const deliver = (event: Record<string, unknown>) => {
  const payload = JSON.stringify(event);
  return fetch(`${base}/webhooks/payments`, { method: 'POST', headers: { 'content-type': 'application/json', 'stripe-signature': signer.webhooks.generateTestHeaderString({ payload, secret: SECRET }) }, body: payload });
};
const balanceOnPage = (page: string) => /<p class="figure" id="balance">([^<]*)<\/p>/.exec(page)?.[1];

/** A signed-in browser of a member with `role` in `accountId` (a new account when not given). */
async function member(role: ConsoleRole, accountId?: string) {
  let userId: string;
  let email: string;
  if (accountId) {
    email = `member-${Math.random().toString(36).slice(2, 10)}@example.com`;
    userId = (await accountsService({ db, clock: systemClock, config }).createUser({ accountId, name: 'Billing Person', email })).id as string;
    await customerConsoleService({ db }).setPassword(userId, PASSWORD);
  } else {
    const c = await customerWithPassword(db, config, PASSWORD);
    ({ userId, email, accountId } = c);
  }
  await db('users').where({ id: userId }).update({ console_role: role });
  const b = browser();
  expect(signedIn(await signIn(b, email, PASSWORD))).toBe(true);
  return { b, accountId: accountId!, userId };
}

describe('billing page: top-up by card', () => {
  it('the form opens a checkout for the session account; paid and delivered twice, the balance on the page rises once', async () => {
    const { b, accountId, userId } = await member('billing');
    const page = await b.get('/app/billing');
    expect(page.status).toBe(200);
    expect(page.body).toContain('href="/app/billing"');
    expect(balanceOnPage(page.body)).toBe('0.00 USD');
    expect(page.body).not.toContain(fake.secretKey);

    const r = await b.post('/app/billing/top-up', { _csrf: hidden(page.body, '_csrf'), amount: '25.50' });
    expect(r.status).toBe(303);
    const m = new RegExp(`^${fake.url.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/c/pay/(cs_test_\\w+)$`).exec(r.location);
    expect(m, r.location).not.toBeNull();
    const sessionId = m![1]!;
    const call = fake.calls.find((c) => c.method === 'POST' && c.path === '/v1/checkout/sessions' && c.form['payment_intent_data[metadata][account_id]'] === accountId)!;
    expect(call.form).toMatchObject({ 'line_items[0][price_data][unit_amount]': '2550', 'payment_intent_data[metadata][purpose]': 'topup' });
    expect(call.form.success_url).toMatch(/\/app\/billing\?checkout=success$/);
    expect(await db('checkout_sessions').where({ provider_session_id: sessionId }).first()).toMatchObject({ account_id: accountId, created_by: `customer:${userId}`, purpose: 'topup' });

    // Back from the provider: a neutral note; nothing credited until the webhook.
    const back = await b.get('/app/billing?checkout=success');
    expect(back.body).toContain('credited to your account once the provider confirms');
    expect(balanceOnPage(back.body)).toBe('0.00 USD');

    const paid = fake.paySession(sessionId);
    await withTestWorker(config, db, async () => {
      for (let i = 0; i < 2; i++) expect((await deliver(paid.paymentSucceeded)).status).toBe(200);
    });
    const after = await b.get('/app/billing');
    expect(balanceOnPage(after.body)).toBe('25.50 USD');
    expect(after.body.match(/<td>topup<\/td>/g)).toHaveLength(1);
    expect(await db('ledger_entries').where({ account_id: accountId, kind: 'topup' })).toHaveLength(1);
  });

  it('an amount outside the limits is shown as a message and opens nothing', async () => {
    const { b, accountId } = await member('owner');
    const r = await b.post('/app/billing/top-up', { _csrf: await csrfOf(b), amount: '2' });
    expect(r.status).toBe(303);
    expect(r.location).toBe('/app/billing?msg=billing_amount_invalid');
    expect((await b.get(r.location)).body).toContain('That amount was not accepted');
    expect(await db('checkout_sessions').where({ account_id: accountId })).toHaveLength(0);
  });
});

describe('billing page: invoices', () => {
  it('lists the invoice with its status, downloads its PDF, and Pay opens a checkout for what is due', async () => {
    const inv = await postpaidInvoice('Console Billing Co');
    const { b } = await member('billing', inv.accountId);
    const page = await b.get('/app/billing');
    expect(page.status).toBe(200);
    const row = new RegExp(`<tr>(?:(?!</tr>).)*${inv.number}(?:(?!</tr>).)*</tr>`, 's').exec(page.body)?.[0] ?? '';
    expect(row).toContain('2026-10');
    expect(row).toContain('119.00 USD');
    expect(row).toContain(inv.dueDate);
    expect(row).toMatch(/<span class="invoice-status">(Open|Overdue)<\/span>/);
    expect(row).toContain(`href="/app/billing/invoices/${inv.invoiceId}.pdf"`);
    expect(row).toContain(`name="invoiceId" value="${inv.invoiceId}"`);

    const pdf = await fetch(`${base}/app/billing/invoices/${inv.invoiceId}.pdf`, { headers: { cookie: [...b.jar].map(([k, v]) => `${k}=${v}`).join('; '), 'x-forwarded-for': `203.0.113.${lastOctet}` } });
    expect(pdf.status).toBe(200);
    expect(pdf.headers.get('content-type')).toMatch(/^application\/pdf/);
    expect(Buffer.from(await pdf.arrayBuffer()).subarray(0, 5).toString()).toBe('%PDF-');

    const pay = await b.post('/app/billing/pay', { _csrf: hidden(page.body, '_csrf'), invoiceId: inv.invoiceId });
    expect(pay.status).toBe(303);
    expect(pay.location).toMatch(new RegExp(`^${fake.url.replace(/[.]/g, '\\.')}/c/pay/cs_test_\\w+$`));
    expect(await db('checkout_sessions').where({ invoice_id: inv.invoiceId }).first()).toMatchObject({ purpose: 'invoice', account_id: inv.accountId });
  });

  it("another account's invoice PDF is a 404 like one that does not exist", async () => {
    const theirs = await postpaidInvoice('Someone Else Co');
    const { b } = await member('owner');
    const other = await b.get(`/app/billing/invoices/${theirs.invoiceId}.pdf`);
    const none = await b.get(`/app/billing/invoices/00000000-0000-4000-8000-000000000000.pdf`);
    expect(other.status).toBe(404);
    expect(none.status).toBe(404);
    expect(other.headers.get('content-type')).not.toMatch(/pdf/);
    expect(other.body).not.toContain(theirs.number);
    expect(other.body).toBe(none.body);
  });

  it('a developer-role member gets 403 for the page, the PDF and the actions, and no Billing link', async () => {
    const inv = await postpaidInvoice('Developer Co');
    const { b } = await member('developer', inv.accountId);
    expect((await b.get('/app/billing')).status).toBe(403);
    expect((await b.get(`/app/billing/invoices/${inv.invoiceId}.pdf`)).status).toBe(403);
    const csrf = await csrfOf(b);
    expect((await b.post('/app/billing/top-up', { _csrf: csrf, amount: '10' })).status).toBe(403);
    expect((await b.post('/app/billing/pay', { _csrf: csrf, invoiceId: inv.invoiceId })).status).toBe(403);
    expect((await b.get('/app')).body).not.toContain('href="/app/billing"');
    expect(await db('checkout_sessions').where({ account_id: inv.accountId })).toHaveLength(0);
  });
});
