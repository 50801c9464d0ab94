import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import { AxeBuilder } from '@axe-core/playwright';
import { Client, Connection } from '@temporalio/client';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminApp } from '../../src/admin/app';
import { systemClock } from '../../src/clock';
import { staffService } from '../../src/staff/staff.service';
import type { Db } from '../../src/db/knex';
import { privacyService } from '../../src/privacy/privacy.service';
import { accountsService } from '../../src/accounts/accounts.service';
import { silentLogger, testConfig } from '../helpers/env';
import { serve } from '../helpers/servers';
import { closeOwnStack, openOwnStack, ownDatabaseUrl } from '../helpers/ownDatabase';
import { withTestWorker } from '../helpers/worker';

/**
 * The staff console in headless Chromium (Debian's /usr/bin/chromium, which
 * .ci/run installs) against the real stack: admin server, PostgreSQL, a
 * Temporal worker. A database of its own: the invoice run would otherwise
 * invoice other files' accounts. The docs' screenshots are taken by
 * test/e2e/screenshots.test.ts, over demo data.
 */
const CHROMIUM = '/usr/bin/chromium';
const config = testConfig({ DATABASE_URL: ownDatabaseUrl('console'), DATA_DIR: fs.mkdtempSync('/tmp/mixroute-console-') });
const PERIOD = '2025-06';
const PASSWORD = 'correct horse battery staple';

let db: Db;
let connection: Connection;
let client: Client;
let browser: Browser;
let base: string;
let close: () => Promise<void>;
let accountId: string;

beforeAll(async () => {
  ({ db, connection, client } = await openOwnStack(config));
  const app = createAdminApp({ db, billing: config.billing, config, clock: systemClock, logger: silentLogger, readiness: {}, readyCheckTimeoutMs: 1000, temporal: { client, taskQueue: config.temporal.taskQueue } });
  ({ url: base, close } = await serve(app));
  await staffService({ db }).createUser({ email: 'bill@mixroute.example', name: 'Billie Billing', role: 'billing', password: PASSWORD });
  await staffService({ db }).createUser({ email: 'cora@mixroute.example', name: 'Cora Compliance', role: 'compliance', password: PASSWORD });

  // One customer with a month of priced usage to invoice.
  const ops = accountsService({ db, clock: systemClock });
  await ops.addProvider({ name: 'openai', baseUrl: 'http://127.0.0.1:9', apiKeyEnv: 'PROVIDER_UNUSED_API_KEY' });
  await ops.addModel({ name: 'gpt-test', provider: 'openai', upstreamModel: 'gpt-test', inputPerMtok: '2.5', outputPerMtok: '10', effectiveFrom: '2020-01-01T00:00:00Z' });
  const price = await db('prices').first('id');
  await db('tax_rates').insert({ country: 'DE', rate: '0.19', effective_from: '2020-01-01' });
  const account = await ops.createAccount({ name: 'Acme Robotics GmbH', country: 'DE', vatId: 'DE123456789', plan: 'postpaid' });
  accountId = account.id;
  await db('usage_hourly').insert(
    [1, 2, 3].map((d) => ({
      account_id: accountId, hour: new Date(`${PERIOD}-0${d}T10:00:00Z`), model: 'gpt-test', provider: 'openai', price_id: price.id,
      requests: 10, input_tokens: 400_000, cache_read_tokens: 0, cache_write_tokens: 0, output_tokens: 100_000, reasoning_tokens: 0, cost: '2',
    })),
  );
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-background-networking', '--disable-dev-shm-usage'] });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await close?.();
  await closeOwnStack(config, { db, connection });
});

async function signIn(email: string): Promise<Page> {
  const context = await browser.newContext({ acceptDownloads: true });
  const page = await context.newPage();
  await page.goto(`${base}/console/login`);
  await page.getByLabel('Email', { exact: true }).fill(email);
  await page.getByLabel(/^Password/).fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(/\/console\/(accounts|dsr)/);
  return page;
}

/** axe-core: no serious or critical violations. */
async function accessible(page: Page) {
  const r = await new AxeBuilder({ page }).analyze();
  const bad = r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  expect(bad.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`)).toEqual([]);
}

describe('staff console', () => {
  it('a billing user dry-runs and runs an invoice run, watches it reach 100 %, and downloads the PDF; the compliance pages are refused', async () => {
    await withTestWorker(config, db, async () => {
      const page = await signIn('bill@mixroute.example');
      const cookies = await page.context().cookies();
      expect(cookies).toHaveLength(1);
      expect(cookies[0]).toMatchObject({ name: 'mr_console', httpOnly: true, secure: true, sameSite: 'Strict' });
      expect((await page.request.get(`${base}/console/accounts`)).headers()['content-security-policy']).toContain("script-src 'self'");

      await page.getByLabel(/Find an account/).fill('Acme');
      await page.getByRole('button', { name: 'Search' }).click();
      await page.getByRole('link', { name: 'Acme Robotics GmbH' }).click();
      await expect.poll(() => page.locator('h1').textContent()).toContain('Acme Robotics GmbH');
      await accessible(page);

      await page.getByRole('link', { name: 'Invoice runs' }).click();
      await accessible(page);
      await page.getByLabel('Period (YYYY-MM)').fill(PERIOD);
      await page.getByRole('button', { name: 'Start' }).click();
      await page.locator('#progress', { hasText: 'completed' }).waitFor({ timeout: 60_000 });
      await expect.poll(() => page.locator('#progress').textContent()).toContain('(dry run): 100 %');
      expect(await db('invoices').count('* as n').first()).toEqual({ n: 0 });

      await page.getByRole('button', { name: `Run ${PERIOD} for real` }).click();
      await page.locator('#progress', { hasText: 'completed' }).waitFor({ timeout: 60_000 });
      await expect.poll(() => page.locator('#progress').textContent()).toMatch(/completed: 100 %[\s\S]*invoiced 1/);
      await accessible(page);

      await page.getByRole('link', { name: `Invoices of ${PERIOD}` }).click();
      await accessible(page);
      const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: /^PDF/ }).click()]);
      const pdf = fs.readFileSync((await download.path())!);
      expect(pdf.subarray(0, 4).toString()).toBe('%PDF');

      const refused = await page.goto(`${base}/console/dsr`);
      expect(refused?.status()).toBe(403);
      expect(await page.locator('main').textContent()).toContain('This page is for compliance or admin staff');
      expect(await page.getByRole('link', { name: 'Rights requests' }).count()).toBe(0);

      // Forms carry the CSRF token: a post without it is refused.
      const forged = await page.request.post(`${base}/console/reconciliation`, { form: { period: PERIOD } });
      expect(forged.status()).toBe(403);

      await page.getByRole('button', { name: 'Sign out' }).click();
      await page.waitForURL(/\/console\/login/);
      await page.goto(`${base}/console/accounts`);
      expect(page.url()).toContain('/console/login');
      expect(await db('login_records').whereNotNull('staff_user_id').count('* as n').first()).toEqual({ n: 1 });
    });
  });

  it('a compliance user sees an overdue request highlighted, extends and verifies an access request, and it completes', async () => {
    const subject = `subject-${randomUUID().slice(0, 8)}@example.com`;
    await accountsService({ db, clock: systemClock }).createUser({ accountId, name: 'Sam Subject', email: subject });
    // Received two months ago: its deadline (a month at most) has passed by the rule, without waiting for it.
    const receivedLongAgo = new Date(Date.now() - 61 * 86_400_000);
    await withTestWorker(config, db, async () => {
      const late = await privacyService({ db, clock: { now: () => receivedLongAgo }, config, client, taskQueue: config.temporal.taskQueue }).create({ type: 'deletion', email: 'late@example.com' }, 'staff:test');
      const request = await privacyService({ db, clock: systemClock, config, client, taskQueue: config.temporal.taskQueue }).create({ type: 'access', email: subject, jurisdiction: 'gdpr' }, 'staff:test');

      const page = await signIn('cora@mixroute.example');
      expect(page.url()).toContain('/console/dsr');
      const lateRow = page.locator('tr', { has: page.getByRole('link', { name: late.id.slice(0, 8) }) });
      await expect.poll(() => lateRow.getAttribute('class')).toBe('overdue');
      expect(await lateRow.textContent()).toContain('OVERDUE');
      await accessible(page);

      await page.getByRole('link', { name: request.id.slice(0, 8) }).click();
      await page.getByLabel('Reason the subject is told').fill('many requests arrived at once this month');
      // Wait for the form's own navigation to land before reloading: a reload racing it detaches the page.
      await Promise.all([page.waitForURL(/msg=dsr_extend/), page.getByRole('button', { name: 'Extend' }).click()]);
      await expect.poll(async () => (await db('dsr_requests').where({ id: request.id }).first()).extended).toBe(true);
      await page.reload();
      expect(await page.locator('main p', { hasText: 'received' }).textContent()).toContain('(extended)');

      await page.getByLabel('Method').selectOption('document');
      await page.getByLabel('How was identity checked?').fill('passport shown on a video call');
      await Promise.all([page.waitForURL(/msg=dsr_verify/), page.getByRole('button', { name: 'Record verification' }).click()]);
      await expect.poll(async () => (await db('dsr_requests').where({ id: request.id }).first()).status, { timeout: 30_000 }).toBe('completed');
      await page.reload();
      await accessible(page);
      expect(await page.locator('ol.timeline').textContent()).toMatch(/identity_verified[\s\S]*closed/);
      const [pkg] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: /Download the package/ }).click()]);
      expect(fs.readFileSync((await pkg.path())!).subarray(0, 2).toString()).toBe('PK');

      await page.getByRole('link', { name: 'Retention & holds' }).click();
      await page.getByLabel('Account id').fill(accountId);
      await page.getByLabel('Reason', { exact: true }).fill('tax audit 2025');
      await page.getByRole('button', { name: 'Place hold' }).click();
      await expect.poll(() => page.locator('main').textContent()).toContain('tax audit 2025');
      await accessible(page);
      const billingOnly = await page.goto(`${base}/console/invoices`);
      expect(billingOnly?.status()).toBe(403);
    });
  });

  it('an admin reaches every page; none has a serious accessibility violation', async () => {
    await staffService({ db }).createUser({ email: 'ada@mixroute.example', name: 'Ada Admin', role: 'admin', password: PASSWORD });
    const page = await signIn('ada@mixroute.example');
    const links = await page.getByRole('navigation', { name: 'Main' }).getByRole('link').all();
    const hrefs = (await Promise.all(links.map((l) => l.getAttribute('href')))).map(String);
    expect(hrefs).toEqual(['/console/accounts', '/console/invoice-runs', '/console/invoices', '/console/receivables', '/console/reconciliation', '/console/dsr', '/console/retention', '/console/register', '/console/privacy-policy', '/console/staff', '/console/policies']);
    const invoice = await db('invoices').first('id');
    const dsr = await db('dsr_requests').first('id');
    for (const href of [...hrefs, `/console/accounts/${accountId}`, `/console/invoices/${invoice.id}`, `/console/dsr/${dsr.id}`]) {
      const res = await page.goto(`${base}${href}`);
      expect(res?.status(), href).toBe(200);
      await accessible(page);
    }
    await page.goto(`${base}/console/staff`);
    await page.getByLabel('Email').fill('new.billing@mixroute.example');
    await page.getByLabel('Name', { exact: true }).fill('Nia New');
    await page.getByLabel('Initial password (at least 12 characters)').fill('another long passphrase');
    await page.getByRole('button', { name: 'Add' }).click();
    await expect.poll(() => page.locator('main').textContent()).toContain('new.billing@mixroute.example');
    expect(await db('staff_users').where({ email: 'new.billing@mixroute.example' }).first('role')).toEqual({ role: 'billing' });
  });

  it('a failed sign-in is a security event; the sign-in page sets only its form cookie', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${base}/console/login`);
    await accessible(page);
    const cookies = await context.cookies();
    expect(cookies.map((c) => c.name)).toEqual(['__Host-mr_console_signin']);
    expect(cookies[0]).toMatchObject({ httpOnly: true, secure: true, sameSite: 'Strict', path: '/' });
    await page.getByLabel('Email', { exact: true }).fill('bill@mixroute.example');
    await page.getByLabel(/^Password/).fill('wrong password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.locator('.flash').textContent()).toContain('Sign-in failed');
    expect(await db('security_events').where({ kind: 'console_login_failed' }).count('* as n').first()).toEqual({ n: 1 });
    await context.close();
  });
});
