import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Client, Connection } from '@temporalio/client';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminApp } from '../../src/admin/app';
import type { Config } from '../../src/config';
import { systemClock } from '../../src/clock';
import type { Db } from '../../src/db/knex';
import { staffService } from '../../src/staff/staff.service';
import { DEMO_PASSWORD, seedDemoData, type DemoData } from '../helpers/demoData';
import { silentLogger, testConfig } from '../helpers/env';
import { startFakeStripe, type FakeStripe } from '../helpers/fakeStripe';
import { closeOwnStack, openOwnStack, ownDatabaseUrl } from '../helpers/ownDatabase';
import { serve } from '../helpers/servers';
import { withTestWorker } from '../helpers/worker';

/**
 * The documentation's screenshots (docs/screenshots/, referenced from
 * docs/customer-console.md and docs/console.md), taken in headless Chromium
 * (Debian's /usr/bin/chromium, as the other e2e tests) at 1280 px, full page,
 * over demo data (test/helpers/demoData.ts: a month of usage over several
 * keys and models, invoices, alerts, webhooks, rights requests) in a
 * database of this file's own. This is the one test that writes them; each
 * step checks that its page shows the seeded data before it is taken, so an
 * empty or broken page fails the test instead of ending up in the docs.
 */
const CHROMIUM = '/usr/bin/chromium';
const SHOTS = fileURLToPath(new URL('../../docs/screenshots/', import.meta.url));
const WIDTH = 1280;

let fake: FakeStripe;
let config: Config;
let db: Db;
let connection: Connection;
let client: Client;
let browser: Browser;
let base: string;
let close: () => Promise<void>;
let demo: DemoData;

beforeAll(async () => {
  fake = await startFakeStripe();
  config = testConfig({
    DATABASE_URL: ownDatabaseUrl('screenshots'),
    DATA_DIR: fs.mkdtempSync('/tmp/mixroute-screenshots-'),
    STRIPE_SECRET_KEY: fake.secretKey,
    STRIPE_API_URL: fake.url,
  });
  ({ db, connection, client } = await openOwnStack(config));
  demo = await seedDemoData(db, config);
  const staff = staffService({ db });
  await staff.createUser({ email: 'ada@mixroute.example', name: 'Ada Admin', role: 'admin', password: DEMO_PASSWORD });
  await staff.createUser({ email: 'bill@mixroute.example', name: 'Billie Billing', role: 'billing', password: DEMO_PASSWORD });
  await staff.createUser({ email: 'cora@mixroute.example', name: 'Cora Compliance', role: 'compliance', password: DEMO_PASSWORD });
  const app = createAdminApp({ db, billing: config.billing, config, clock: systemClock, logger: silentLogger, readiness: {}, readyCheckTimeoutMs: 1000, temporal: { client, taskQueue: config.temporal.taskQueue } });
  ({ url: base, close } = await serve(app));
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-background-networking', '--disable-dev-shm-usage'] });
  fs.mkdirSync(SHOTS, { recursive: true });
  // Seeding settles and invoices two months of usage: seconds on an idle machine, minutes on a busy one.
}, 300_000);

afterAll(async () => {
  await browser?.close();
  await close?.();
  await fake?.close();
  await closeOwnStack(config, { db, connection });
});

async function shot(page: Page, name: string) {
  // Charts draw after load; wait for the canvas to have been painted where there is one.
  if (await page.locator('canvas').count()) await page.waitForFunction('typeof window.Chart === "function"');
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true, animations: 'disabled' });
  expect(fs.statSync(path.join(SHOTS, `${name}.png`)).size, name).toBeGreaterThan(10_000);
}

/** The password form of the sign-in page (it also has a form for a sign-in link). */
async function customerSignIn(page: Page) {
  const form = page.getByRole('group', { name: 'Sign in to your account' });
  await form.getByLabel('Email', { exact: true }).fill(demo.owner.email);
  await form.getByLabel('Password', { exact: true }).fill(DEMO_PASSWORD);
  await form.getByRole('button', { name: 'Sign in' }).click();
}

/** The cookie notice stands above every page until it is answered; the pages are what the docs show. */
async function dismissCookieNotice(page: Page) {
  const necessary = page.getByRole('button', { name: 'Only necessary cookies' });
  if ((await necessary.count()) === 0) return;
  await Promise.all([page.waitForLoadState('load'), necessary.click()]);
  await expect.poll(() => necessary.count()).toBe(0);
  // Again without the "choice saved" message the answer redirected with.
  await open(page, new URL(page.url()).pathname);
}

const mainText = (page: Page) => page.locator('main').innerText();
/** Rows in the page's tables (header rows excluded). */
const bodyRows = (page: Page, scope = 'main') => page.locator(`${scope} table tbody tr`).count();

async function open(page: Page, href: string) {
  const res = await page.goto(`${base}${href}`);
  expect(res?.status(), href).toBe(200);
}

describe('customer console screenshots (the account owner of Northwind Labs)', () => {
  it('takes every page of the customer console', async () => {
    const context = await browser.newContext({ viewport: { width: WIDTH, height: 900 } });
    const page = await context.newPage();
    await page.goto(`${base}/app`);
    await page.waitForURL(/\/app\/login$/);
    await expect.poll(() => page.getByRole('group', { name: 'Sign in to your account' }).count()).toBe(1);
    await shot(page, 'customer-sign-in');

    await customerSignIn(page);
    await page.waitForURL(/\/app$/);
    await dismissCookieNotice(page);
    await expect.poll(() => page.getByRole('heading', { name: demo.accountName }).count()).toBe(1);
    expect(await bodyRows(page)).toBeGreaterThan(20);
    await shot(page, 'customer-overview');

    await open(page, '/app/security');
    await expect.poll(() => page.getByText('this browser').count()).toBe(1);
    await shot(page, 'customer-security');

    await open(page, '/app/keys');
    const keysText = await mainText(page);
    for (const k of demo.keys) expect(keysText).toContain(k.name);
    expect(await bodyRows(page)).toBeGreaterThanOrEqual(demo.keys.length);
    await shot(page, 'customer-keys');

    await open(page, `/app/keys/${demo.keys[0]!.id}`);
    expect(await page.locator('main input[name="name"]').inputValue()).toBe(demo.keys[0]!.name);
    await shot(page, 'customer-key');

    // A week, not the default 30 days: the day × model × key table of a month is over 20 000 px tall.
    const day = (back: number) => new Date(Date.now() - back * 86_400_000).toISOString().slice(0, 10);
    await open(page, `/app/usage?from=${day(6)}&to=${day(0)}`);
    const usageText = await mainText(page);
    for (const m of ['gpt-4o-mini', 'claude-sonnet-4', 'text-embedding-3-small']) expect(usageText).toContain(m);
    expect(usageText).toContain('production-api');
    expect(await bodyRows(page)).toBeGreaterThan(100);
    await shot(page, 'customer-usage');

    await open(page, '/app/billing');
    const billingText = await mainText(page);
    expect(billingText).toMatch(/Paid/);
    expect(billingText).toMatch(/Open|Overdue/);
    expect(billingText).toContain('DE298765432');
    expect(await page.getByRole('link', { name: /PDF/ }).count()).toBeGreaterThanOrEqual(4);
    await shot(page, 'customer-billing');

    await open(page, '/app/alerts');
    const alertsText = await mainText(page);
    expect(alertsText).toContain('hooks.northwind-labs.example');
    expect(await page.locator('#low_balance_thresholds').inputValue()).toMatch(/500/);
    await shot(page, 'customer-alerts');

    await open(page, `/app/alerts/webhooks/${demo.endpointId}`);
    const hookText = await mainText(page);
    expect(hookText).toMatch(/succeeded/);
    expect(hookText).toMatch(/failed/);
    await shot(page, 'customer-webhook');

    await open(page, '/app/privacy');
    const privacyText = await mainText(page);
    expect(privacyText).toMatch(/openai/i);
    expect(await page.locator('main [data-status="completed"]').count()).toBeGreaterThanOrEqual(1);
    await shot(page, 'customer-privacy');

    await open(page, `/app/privacy/requests/${demo.accessRequestId}`);
    expect(await page.locator('main [data-status="completed"]').count()).toBe(1);
    await shot(page, 'customer-privacy-request');

    await open(page, '/app/members');
    const membersText = await mainText(page);
    for (const u of demo.users) expect(membersText).toContain(u.email);
    await shot(page, 'customer-members');

    await open(page, '/app/cookies');
    expect(await mainText(page)).toContain('not agreed');
    await shot(page, 'customer-cookies');
    await context.close();
  }, 120_000);

  it('takes the overview at a phone-sized width (390 px)', async () => {
    const context = await browser.newContext({ viewport: { width: 390, height: 844 } });
    const page = await context.newPage();
    await page.goto(`${base}/app/login`);
    await customerSignIn(page);
    await page.waitForURL(/\/app$/);
    await dismissCookieNotice(page);
    await expect.poll(() => page.getByRole('heading', { name: demo.accountName }).count()).toBe(1);
    await shot(page, 'customer-overview-390');
    await context.close();
  }, 60_000);
});

describe('staff console screenshots', () => {
  async function staffSignIn(email: string): Promise<Page> {
    const context = await browser.newContext({ viewport: { width: WIDTH, height: 900 } });
    const page = await context.newPage();
    await page.goto(`${base}/console/login`);
    await page.getByLabel('Email', { exact: true }).fill(email);
    await page.getByLabel(/^Password/).fill(DEMO_PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(/\/console\/(accounts|dsr)/);
    return page;
  }

  it('takes the sign-in page', async () => {
    const context = await browser.newContext({ viewport: { width: WIDTH, height: 900 } });
    const page = await context.newPage();
    await open(page, '/console/login');
    expect(await page.getByRole('button', { name: 'Sign in' }).count()).toBe(1);
    await shot(page, 'login');
    await context.close();
  });

  it('takes an invoice run (dry run, then the real one) with a worker running it', async () => {
    const page = await staffSignIn('bill@mixroute.example');
    const period = new Date(Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth() - 1, 1)).toISOString().slice(0, 7);
    await withTestWorker(config, db, async () => {
      await open(page, '/console/invoice-runs');
      await page.getByLabel('Period (YYYY-MM)').fill(period);
      await page.getByRole('button', { name: 'Start' }).click();
      await page.locator('#progress', { hasText: 'completed' }).waitFor({ timeout: 60_000 });
      await expect.poll(() => page.locator('#progress').textContent()).toContain('(dry run): 100 %');
      await shot(page, 'invoice-run-dry');
      await page.getByRole('button', { name: `Run ${period} for real` }).click();
      await page.locator('#progress', { hasText: 'completed' }).waitFor({ timeout: 60_000 });
      // Northwind Labs was invoiced by the seeder; the other accounts with usage are invoiced now.
      await expect.poll(() => page.locator('#progress').textContent()).toMatch(/completed: 100 %[\s\S]*invoiced [2-9]/);
      await shot(page, 'invoice-run');
    });
    await page.context().close();
  }, 150_000);

  it('takes every page an admin sees, each showing the demo data', async () => {
    const page = await staffSignIn('ada@mixroute.example');
    const openPeriod = new Date(Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth() - 1, 1)).toISOString().slice(0, 7);

    await open(page, '/console/accounts');
    const accountsText = await mainText(page);
    for (const name of [demo.accountName, ...demo.otherAccounts.map((a) => a.name)]) expect(accountsText).toContain(name);
    await shot(page, 'accounts');

    await open(page, `/console/accounts/${demo.accountId}`);
    await expect.poll(() => page.locator('h1').textContent()).toContain(demo.accountName);
    expect(await bodyRows(page)).toBeGreaterThan(20);
    await shot(page, 'account');

    await open(page, `/console/invoices?period=${openPeriod}`);
    const invoicesText = await mainText(page);
    expect(invoicesText).toContain(demo.accountId);
    expect(await bodyRows(page)).toBeGreaterThanOrEqual(3);
    await shot(page, 'invoices');

    await open(page, `/console/invoices/${demo.invoices.paid}`);
    const invoiceText = await mainText(page);
    expect(invoiceText).toMatch(/Invoice MR-\d{4}-\d+/);
    expect(invoiceText).toContain('gpt-4o-mini');
    expect(invoiceText).toContain('claude-sonnet-4');
    await shot(page, 'invoice');

    await open(page, '/console/receivables');
    expect(await mainText(page)).toContain(demo.accountName);
    await shot(page, 'receivables');

    await open(page, '/console/reconciliation');
    expect(await bodyRows(page)).toBeGreaterThanOrEqual(1);
    expect(await mainText(page)).toContain(openPeriod);
    await shot(page, 'reconciliation');

    await open(page, '/console/dsr');
    const queueText = await mainText(page);
    expect(queueText).toContain('OVERDUE');
    expect(await bodyRows(page)).toBeGreaterThanOrEqual(4);
    await shot(page, 'dsr-queue');

    await open(page, `/console/dsr/${demo.accessRequestId}`);
    expect(await page.locator('ol.timeline').textContent()).toMatch(/received[\s\S]*identity_verified[\s\S]*closed/);
    await shot(page, 'dsr-request');

    await open(page, '/console/retention');
    expect(await mainText(page)).toContain('tax audit 2025');
    await shot(page, 'retention');

    await open(page, '/console/register');
    const registerText = await mainText(page);
    expect(registerText).toContain('openai');
    expect(registerText).toContain('anthropic');
    await shot(page, 'register');

    await open(page, '/console/staff');
    const staffText = await mainText(page);
    for (const email of ['ada@mixroute.example', 'bill@mixroute.example', 'cora@mixroute.example']) expect(staffText).toContain(email);
    await shot(page, 'staff');

    await open(page, '/console/policies');
    expect(await bodyRows(page)).toBeGreaterThan(3);
    await shot(page, 'policies');
    await page.context().close();
  }, 120_000);
});
