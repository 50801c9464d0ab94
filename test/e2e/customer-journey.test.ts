import fs from 'node:fs';
import { Client, Connection } from '@temporalio/client';
import { chromium, type Browser, type Page } from 'playwright-core';
import OpenAI from 'openai';
import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accountsService } from '../../src/accounts/accounts.service';
import { createAdminApp } from '../../src/admin/app';
import { systemClock } from '../../src/clock';
import type { Config } from '../../src/config';
import { customerConsoleService } from '../../src/customerConsole/customerConsole.service';
import { browser as fetchBrowser, csrfOf, signedIn, signIn } from '../helpers/customerConsole';
import { silentLogger, testConfig, testDb } from '../helpers/env';
import { untilTrue } from '../helpers/eventually';
import { startFakeStripe, type FakeStripe } from '../helpers/fakeStripe';
import { startFakeUpstream, type FakeUpstream } from '../helpers/fakeUpstream';
import { startTestGateway, UPSTREAM_KEY_ENV } from '../helpers/gateway';
import { postpaidInvoiceFactory } from '../helpers/postpaidInvoice';
import { authenticator, mailbox } from '../helpers/secondFactor';
import { serve } from '../helpers/servers';
import { withTestWorker } from '../helpers/worker';

/**
 * The journey of a new customer in headless Chromium (issue 26), at a phone's
 * width (390 px): invited by the account's owner, joins, accepts analytics,
 * turns on two-step sign-in and signs in with it, creates a key, sees a
 * request made with it (through the real gateway, with the official OpenAI
 * client) appear with its cost, downloads an invoice, tops up through the
 * hosted checkout (the payment provider faked, the top-up credited by its
 * signed webhook), sets an alert, downloads a copy of their data, and
 * withdraws analytics consent. Real PostgreSQL and a real Temporal server.
 */
const CHROMIUM = '/usr/bin/chromium';
const SECRET = 'whsec_journey_secret';
const PASSWORD = 'a long journey passphrase';
const db = testDb(testConfig());

let config: Config;
let fake: FakeStripe;
let upstream: FakeUpstream;
let gateway: Awaited<ReturnType<typeof startTestGateway>>;
let connection: Connection;
let chrome: Browser;
let base: string;
let close: () => Promise<void>;
let account: { accountId: string; invoiceId: string; number: string };
let owner: { email: string };
let model: string;
const signer = new Stripe('sk_test_unused');

beforeAll(async () => {
  fake = await startFakeStripe();
  config = testConfig({ PAYMENT_WEBHOOK_SECRET: SECRET, PAYMENT_WEBHOOK_TOLERANCE_S: '300', STRIPE_SECRET_KEY: fake.secretKey, STRIPE_API_URL: fake.url });
  connection = await Connection.connect({ address: config.temporal.address! });
  const client = new Client({ connection, namespace: config.temporal.namespace });
  const app = createAdminApp({ db, billing: config.billing, config, temporal: { client, taskQueue: config.temporal.taskQueue }, clock: systemClock, logger: silentLogger, readiness: {}, readyCheckTimeoutMs: 1000 });
  ({ url: base, close } = await serve(app));

  // A postpaid account with one invoice, whose owner invites the new customer.
  account = await (await postpaidInvoiceFactory(db, config))('Journey Robotics');
  const ops = accountsService({ db, clock: systemClock, config });
  const tag = Math.random().toString(36).slice(2, 8);
  owner = { email: `owner-${tag}@example.com` };
  const ownerUser = await ops.createUser({ accountId: account.accountId, name: 'Olivia Owner', email: owner.email });
  await customerConsoleService({ db }).setPassword(ownerUser.id, PASSWORD);
  await db('users').where({ id: ownerUser.id }).update({ console_role: 'owner' });

  // A model served by a fake provider, reached through the real gateway.
  upstream = await startFakeUpstream();
  const provider = `journey-${tag}`;
  await ops.addProvider({ name: provider, baseUrl: upstream.url, apiKeyEnv: UPSTREAM_KEY_ENV });
  model = `journey-model-${tag}`;
  await ops.addModel({ name: model, provider, upstreamModel: 'fake-model', inputPerMtok: '2.5', outputPerMtok: '10', effectiveFrom: '2020-01-01T00:00:00Z' });
  gateway = await startTestGateway({}, config);

  chrome = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-background-networking', '--disable-dev-shm-usage'] });
}, 120_000);

afterAll(async () => {
  await chrome?.close();
  await gateway?.stop();
  await upstream?.close();
  await close?.();
  await connection?.close();
  await fake?.close();
  await db.destroy();
});

const deliver = (event: Record<string, unknown>) => {
  const payload = JSON.stringify(event);
  return fetch(`${base}/webhooks/payments`, { method: 'POST', headers: { 'content-type': 'application/json', 'stripe-signature': signer.webhooks.generateTestHeaderString({ payload, secret: SECRET }) }, body: payload });
};

/** Signs in through the password form (the sign-in page also has the sign-in-link form, with its own Email field). */
async function passwordSignIn(page: Page, email: string) {
  await page.locator('#email').fill(email);
  await page.locator('#password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
}

describe('a new customer at 390 px', () => {
  it('is invited, signs in with a second factor, uses a key, sees its cost, pays, sets an alert, downloads their data and withdraws consent', async () => {
    const newcomer = `newcomer-${Math.random().toString(36).slice(2, 8)}@example.com`;

    // The owner invites them (the owner's own browser, over HTTP).
    const ob = fetchBrowser(base);
    expect(signedIn(await signIn(ob, owner.email, PASSWORD))).toBe(true);
    const invited = await ob.post('/app/members/invite', { _csrf: await csrfOf(ob), email: newcomer, role: 'admin' });
    expect(invited.status).toBe(303);
    const mail = await untilTrue(() => mailbox(config).find((m) => m.to === newcomer && m.key.startsWith('customer-invitation:')), { timeoutMs: 10_000, message: 'the invitation email' });
    const token = /\/app\/invitations\/accept\?token=([A-Za-z0-9_-]+)/.exec(mail.body)?.[1];
    expect(token).toBeTruthy();

    await withTestWorker(config, db, async () => {
      const context = await chrome.newContext({ viewport: { width: 390, height: 844 }, acceptDownloads: true });
      const page = await context.newPage();

      // Joins: the link from the email, a name and a password.
      await page.goto(`${base}/app/invitations/accept?token=${token}`);
      await page.getByLabel('Your name').fill('Nia Newcomer');
      await page.getByLabel(/^Password/).fill(PASSWORD);
      await page.getByRole('button', { name: 'Join the account' }).click();
      await page.waitForURL(/\/app\/login/);

      // The cookie banner on the first visit: agrees to analytics.
      await page.getByRole('button', { name: 'Accept analytics' }).click();
      await expect.poll(() => page.getByRole('button', { name: 'Accept analytics' }).count()).toBe(0);

      await passwordSignIn(page, newcomer);
      await page.waitForURL(/\/app$/);
      const user = await db('users').where({ account_id: account.accountId, email: newcomer }).first();
      expect(user.console_role).toBe('admin');

      // Turns on two-step sign-in with an authenticator app.
      await page.goto(`${base}/app/security`);
      await page.getByRole('button', { name: 'Set up two-step sign-in' }).click();
      const secret = (await page.locator('#totp-secret').textContent())!.trim();
      const app = authenticator(secret);
      await page.locator('#confirm-code').fill(app.next());
      await page.getByRole('button', { name: 'Turn on two-step sign-in' }).click();
      await expect.poll(() => page.locator('#recovery-codes li').count()).toBe(10);

      // Signs out and in again: the password alone is not enough.
      await page.getByRole('button', { name: 'Sign out' }).click();
      await page.waitForURL(/\/app\/login/);
      await passwordSignIn(page, newcomer);
      await page.waitForURL(/\/app\/login\/second-factor/);
      expect((await page.goto(`${base}/app/keys`))?.url()).toMatch(/\/app\/login/);
      await page.goto(`${base}/app/login/second-factor`);
      await page.getByLabel(/^Code/).fill(app.next());
      await page.getByRole('button', { name: 'Continue' }).click();
      await page.waitForURL(/\/app$/);
      // Analytics agreed before signing in: recorded for this user once signed in, and page views counted.
      await expect.poll(async () => (await db('consent_records').where({ user_id: user.id, purpose: 'cookies' }).orderBy('id', 'desc').first())?.granted).toBe(true);

      // Creates a key, shown once.
      await page.goto(`${base}/app/keys`);
      await page.getByLabel('Name', { exact: true }).fill('journey key');
      await page.getByRole('button', { name: 'Create key' }).click();
      const key = (await page.locator('#new-key').textContent())!.trim();
      expect(key.length).toBeGreaterThan(20);

      // A request with it, through the gateway, with the official OpenAI client.
      const openai = new OpenAI({ apiKey: key, baseURL: `${gateway.url}/v1`, maxRetries: 0 });
      const { response } = await openai.chat.completions.create({ model, messages: [{ role: 'user', content: 'hello' }] }).withResponse();
      const requestId = response.headers.get('x-request-id')!;
      expect(requestId).toMatch(/^req-/);
      const event = await untilTrue(() => db('usage_events').where({ request_id: requestId }).first(), { timeoutMs: 15_000, message: 'the request to be metered' });
      expect(Number(event.cost)).toBeGreaterThan(0);

      // ... and sees it in the request log with its cost.
      await page.goto(`${base}/app/usage?request=${encodeURIComponent(requestId)}`);
      const row = page.locator('#requests tbody tr', { hasText: requestId });
      await expect.poll(() => row.count()).toBe(1);
      const cells = await row.locator('td').allTextContents();
      expect(cells[2]).toBe(model);
      expect(cells[3]).toContain('journey key');
      expect(Number(cells[7]!.split(' ')[0])).toBe(Number(event.cost));
      expect(cells[7]).toContain('USD');

      // Downloads the account's invoice.
      await page.goto(`${base}/app/billing`);
      const [pdf] = await Promise.all([page.waitForEvent('download'), page.locator(`a[href="/app/billing/invoices/${account.invoiceId}.pdf"]`).click()]);
      expect(fs.readFileSync((await pdf.path())!).subarray(0, 5).toString()).toBe('%PDF-');

      // Tops up through the hosted checkout; the provider's signed webhook credits it.
      const before = await db('ledger_entries').where({ account_id: account.accountId, kind: 'topup' }).count('* as n').first();
      await page.getByLabel(/^Amount/).fill('40.00');
      await Promise.all([page.waitForURL((u) => u.href.startsWith(fake.url)), page.getByRole('button', { name: 'Top up' }).click()]);
      const sessionId = /\/c\/pay\/(cs_test_\w+)$/.exec(page.url())![1]!;
      expect((await deliver(fake.paySession(sessionId).paymentSucceeded)).status).toBe(200);
      await untilTrue(async () => Number((await db('ledger_entries').where({ account_id: account.accountId, kind: 'topup' }).count('* as n').first())!.n) === Number(before!.n) + 1, { timeoutMs: 30_000, message: 'the top-up to be credited' });
      await page.goto(`${base}/app/billing?checkout=success`);
      expect(await page.locator('main').textContent()).toContain('40.00');

      // Sets a low-balance alert.
      await page.goto(`${base}/app/alerts`);
      await page.getByLabel(/^Low-balance thresholds/).fill('25.00');
      await page.getByRole('button', { name: 'Save alert settings' }).click();
      await page.waitForURL(/msg=alerts_settings_saved/);
      expect(Number(await page.getByLabel(/^Low-balance thresholds/).inputValue())).toBe(25);

      // Downloads a copy of their own data, identity verified by the sign-in.
      await page.goto(`${base}/app/privacy`);
      await page.getByRole('button', { name: 'Prepare my copy' }).click();
      const link = page.locator('a[href^="/privacy/packages/"]');
      await untilTrue(
        async () => {
          await page.reload();
          return (await link.count()) > 0;
        },
        { timeoutMs: 60_000, message: 'the download link' },
      );
      const [zip] = await Promise.all([page.waitForEvent('download'), link.first().click()]);
      expect(fs.readFileSync((await zip.path())!).subarray(0, 2).toString()).toBe('PK');

      // Withdraws analytics consent: recorded, and page views are no longer counted.
      const views = async () => Number((await db('page_view_counts').where({ page: '/app/usage' }).sum('views as n').first())?.n ?? 0);
      const whileAgreed = await views();
      await page.goto(`${base}/app/usage`);
      expect(await views()).toBeGreaterThan(whileAgreed);
      await page.goto(`${base}/app/cookies`);
      await page.getByRole('button', { name: 'Only necessary cookies' }).first().click();
      await expect.poll(async () => (await db('consent_records').where({ user_id: user.id, purpose: 'cookies' }).orderBy('id', 'desc').first())?.granted).toBe(false);
      const counted = await views();
      await page.goto(`${base}/app/usage`);
      await page.goto(`${base}/app/usage`);
      expect(await views()).toBe(counted);

      // Everything was done at a phone's width without the page scrolling sideways.
      expect(await page.evaluate<number>('document.scrollingElement.scrollWidth')).toBeLessThanOrEqual(390);
      await context.close();
    });
  });
});
