import { AxeBuilder } from '@axe-core/playwright';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminApp } from '../../src/admin/app';
import { systemClock } from '../../src/clock';
import { monthBounds } from '../../src/customerConsole/customerConsole.rules';
import { customerWithPassword } from '../helpers/customerConsole';
import { silentLogger, testConfig, testDb } from '../helpers/env';
import { serve } from '../helpers/servers';

/**
 * The customer console in headless Chromium (Debian's /usr/bin/chromium, as
 * test/e2e/console.test.ts): a user signs in, sees the overview with the
 * account's balance and spend chart, looks at where they are signed in, and
 * signs out; once at a phone's width. axe-core finds no serious or critical
 * violation on any page. The docs' screenshots are taken by
 * test/e2e/screenshots.test.ts, over demo data.
 */
const CHROMIUM = '/usr/bin/chromium';
const config = testConfig();
const db = testDb(config);
const PASSWORD = 'correct horse battery staple';

let browser: Browser;
let base: string;
let close: () => Promise<void>;
let customer: Awaited<ReturnType<typeof customerWithPassword>>;

beforeAll(async () => {
  const app = createAdminApp({ db, billing: config.billing, config, clock: systemClock, logger: silentLogger, readiness: {}, readyCheckTimeoutMs: 1000 });
  ({ url: base, close } = await serve(app));
  customer = await customerWithPassword(db, config, PASSWORD, { balance: '86.40', name: 'Northwind Analytics GmbH' });
  // A few days of usage over two models in this month, and some last month.
  const m = monthBounds(new Date());
  const today = Math.floor(Date.now() / 86_400_000) * 86_400_000;
  const rows = [];
  for (let d = 0; d < 5; d++) {
    const hour = new Date(Math.max(m.thisMonth.getTime(), today - d * 86_400_000) + 3_600_000 * (d + 1));
    if (hour.getTime() > Date.now()) continue;
    for (const [model, cost] of [['gpt-4o-mini', `${0.4 + d / 10}`], ['claude-haiku', `${1.1 - d / 10}`]] as const) {
      rows.push({ account_id: customer.accountId, hour, model, provider: 'p', price_id: '', requests: 20 + d, input_tokens: 40_000, cache_read_tokens: 0, cache_write_tokens: 0, output_tokens: 9_000, reasoning_tokens: 0, cost });
    }
  }
  rows.push({ account_id: customer.accountId, hour: new Date(m.lastMonth.getTime() + 86_400_000), model: 'gpt-4o-mini', provider: 'p', price_id: '', requests: 300, input_tokens: 1, cache_read_tokens: 0, cache_write_tokens: 0, output_tokens: 1, reasoning_tokens: 0, cost: '12.5' });
  // Distinct (hour, model) pairs only: the rows above may share an hour on the first days of a month.
  const seen = new Set<string>();
  await db('usage_hourly').insert(rows.filter((r) => (seen.has(`${r.hour.toISOString()}|${r.model}`) ? false : (seen.add(`${r.hour.toISOString()}|${r.model}`), true))));
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-background-networking', '--disable-dev-shm-usage'] });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await close?.();
  await db.destroy();
});

async function checkPage(page: Page, name: string) {
  const r = await new AxeBuilder({ page }).analyze();
  const bad = r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  expect(bad.map((v) => `${v.id}: ${v.help}`), name).toEqual([]);
}

async function journey(width: number, suffix: string) {
  const context = await browser.newContext({ viewport: { width, height: 900 } });
  const page = await context.newPage();
  await page.goto(`${base}/app`);
  await page.waitForURL(/\/app\/login$/);
  await checkPage(page, `customer-sign-in${suffix}`);
  await page.locator('#email').fill(customer.email);
  await page.locator('#password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(/\/app$/);
  await expect.poll(() => page.locator('#balance').textContent()).toBe('86.40 USD');
  await expect.poll(() => page.getByRole('heading', { name: 'Northwind Analytics GmbH' }).count()).toBe(1);
  // The staff console's chart component draws the canvas (Chart.js loaded by console.js).
  await page.waitForFunction('typeof window.Chart === "function"');
  await checkPage(page, `customer-overview${suffix}`);

  await page.getByRole('link', { name: 'Where you are signed in' }).click();
  await page.waitForURL(/\/app\/security$/);
  await expect.poll(() => page.getByText('this browser').count()).toBe(1);
  await checkPage(page, `customer-security${suffix}`);

  await page.getByRole('button', { name: 'Sign out', exact: true }).click();
  await page.waitForURL(/\/app\/login\?msg=signed_out$/);
  await page.goto(`${base}/app`);
  await page.waitForURL(/\/app\/login$/);
  await context.close();
}

describe('customer console in a browser', () => {
  it('signs in, shows the overview and where the user is signed in, signs out', async () => {
    await journey(1280, '');
  }, 120_000);

  it('works at a phone-sized width (390 px)', async () => {
    await journey(390, '-390');
  }, 120_000);
});
