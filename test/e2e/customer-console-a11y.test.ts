import { AxeBuilder } from '@axe-core/playwright';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminApp } from '../../src/admin/app';
import { systemClock } from '../../src/clock';
import type { Config } from '../../src/config';
import { customerRoutesOf } from '../../src/customerConsole/app';
import type { CustomerRoute } from '../../src/customerConsole/pages/kit';
import { consoleAccountFactory, CONSOLE_PASSWORD, routePath, type ConsoleAccount } from '../helpers/customerConsoleFixture';
import { dsrSuite } from '../helpers/dsrStack';
import { silentLogger, testConfig, testDb } from '../helpers/env';
import { untilTrue } from '../helpers/eventually';
import { startFakeStripe, type FakeStripe } from '../helpers/fakeStripe';
import { serve } from '../helpers/servers';

/**
 * The customer console's quality bar (issue 26), over every page the page
 * kit registered (so a page added later is checked too), signed in as an
 * owner of an account with a row of every kind: axe-core finds no serious or
 * critical violation; at a phone's width (390 px) no page scrolls sideways
 * (wide tables scroll inside their own box); and the main forms work by
 * keyboard alone. Chromium is Debian's /usr/bin/chromium, as in
 * test/e2e/console.test.ts.
 */
const CHROMIUM = '/usr/bin/chromium';
const PHONE = 390;
/** Sub-pixel rounding of the layout. */
const SCROLL_TOLERANCE = 2;
/** Pages for someone not signed in, which the registry (signed-in pages) does not hold. */
const PUBLIC_PAGES = ['/app/login', '/app/cookies'];
/** What a page needs before it can be shown (it answers with a redirect otherwise). */
const PREPARE: Record<string, (page: Page) => Promise<void>> = {
  '/app/security/two-step/setup': async (page) => {
    await page.goto(`${base}/app/security`);
    const csrf = await page.locator('input[name="_csrf"]').first().inputValue();
    const r = await page.request.post(`${base}/app/security/two-step/setup`, { form: { _csrf: csrf }, maxRedirects: 0 });
    expect(r.status()).toBe(303);
  },
};

const dbConfig = testConfig();
const db = testDb(dbConfig);
const suite = dsrSuite(dbConfig, db);
let config: Config;
let fake: FakeStripe;
let browser: Browser;
let base: string;
let close: () => Promise<void>;
let routes: readonly CustomerRoute[];
let A: ConsoleAccount;

beforeAll(async () => {
  fake = await startFakeStripe();
  config = testConfig({ TRUSTED_PROXIES: 'loopback', STRIPE_SECRET_KEY: fake.secretKey, STRIPE_API_URL: fake.url });
  const app = createAdminApp({
    db,
    billing: config.billing,
    config,
    clock: systemClock,
    logger: silentLogger,
    readiness: {},
    readyCheckTimeoutMs: 1000,
    temporal: { client: suite.client, taskQueue: config.temporal.taskQueue },
  });
  ({ url: base, close } = await serve(app));
  routes = customerRoutesOf(app);
  A = await (await consoleAccountFactory(db, config, base))('Northwind');
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-background-networking', '--disable-dev-shm-usage'] });
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await close?.();
  await fake?.close();
});

/** axe-core's serious and critical violations on the page, as "rule: help (selectors)". */
async function axeProblems(page: Page): Promise<string[]> {
  const r = await new AxeBuilder({ page }).analyze();
  return r.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id}: ${v.help} (${v.nodes
      .slice(0, 3)
      .map((n) => n.target.join(' '))
      .join(', ')})`);
}

/** A browser context of `width` signed in as A's owner through the sign-in form. */
async function signedIn(width: number): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ viewport: { width, height: 900 } });
  const page = await context.newPage();
  await page.goto(`${base}/app/login`);
  // By id: the page has a second email field (the sign-in link form).
  await page.locator('#email').fill(A.members.owner.email);
  await page.locator('#password').fill(CONSOLE_PASSWORD);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.waitForURL(/\/app$/);
  return { context, page };
}

/** Every signed-in page (GET) of the registry, with A's ids; a page whose parameters cannot be filled fails the test. */
function pages(): string[] {
  const gets = routes.filter((r) => r.method === 'GET');
  const unfilled = gets.filter((r) => routePath(r.path, A, 'owner') === null).map((r) => r.path);
  expect(unfilled, 'pages with parameters test/helpers/customerConsoleFixture.ts ROUTE_PARAMS cannot fill').toEqual([]);
  return gets.map((r) => routePath(r.path, A, 'owner')!);
}

/**
 * Visits each page (HTML only: a PDF or CSV download has no layout) and
 * returns what is wrong with it: axe's serious and critical violations (with
 * `axe`), and a page wider than the screen.
 */
async function walk(page: Page, width: number, paths: string[], opts: { axe: boolean }): Promise<{ problems: string[]; checked: string[]; downloads: string[] }> {
  const problems: string[] = [];
  const checked: string[] = [];
  const downloads: string[] = [];
  for (const path of paths) {
    await PREPARE[path]?.(page);
    const head = await page.request.get(base + path, { maxRedirects: 0 });
    if (!(head.headers()['content-type'] ?? '').startsWith('text/html')) {
      expect(head.status(), path).toBe(200);
      downloads.push(path);
      continue;
    }
    const res = await page.goto(base + path);
    expect(res?.status(), path).toBe(200);
    if (opts.axe) for (const p of await axeProblems(page)) problems.push(`${path} at ${String(width)} px: ${p}`);
    // Strings: they run in the page, whose DOM types this Node project does not load.
    const overflow = await page.evaluate<number>('document.scrollingElement.scrollWidth');
    if (overflow > width + SCROLL_TOLERANCE) {
      const wide = await page.evaluate<string[]>(`Array.from(document.body.querySelectorAll('*'))
        .filter((el) => !el.parentElement?.closest('.table-scroll') && el.getBoundingClientRect().right > ${String(width + SCROLL_TOLERANCE)})
        .map((el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + (typeof el.className === 'string' && el.className ? '.' + el.className.split(' ').join('.') : ''))
        .slice(-5)`);
      problems.push(`${path} at ${String(width)} px: the page is ${String(overflow)} px wide (${wide.join(', ')})`);
    }
    checked.push(path);
  }
  return { problems, checked, downloads };
}

/** The pages for someone not signed in, in a context of `width` without a session. */
async function walkPublic(width: number, opts: { axe: boolean }) {
  const context = await browser.newContext({ viewport: { width, height: 900 } });
  const r = await walk(await context.newPage(), width, PUBLIC_PAGES, opts);
  await context.close();
  return r;
}

describe('every customer console page', () => {
  it('has no serious or critical axe-core violation', async () => {
    const { context, page } = await signedIn(1280);
    const { problems, checked, downloads } = await walk(page, 1280, pages(), { axe: true });
    await context.close();
    const signedOut = await walkPublic(1280, { axe: true });
    expect(checked).toEqual(expect.arrayContaining(['/app', '/app/keys', '/app/billing', `/app/keys/${A.keyId}`]));
    expect(downloads).toEqual(expect.arrayContaining([`/app/billing/invoices/${A.invoiceId}.pdf`]));
    expect([...problems, ...signedOut.problems]).toEqual([]);
  }, 400_000);

  it(`is readable at ${String(PHONE)} px: no page scrolls sideways`, async () => {
    const { context, page } = await signedIn(PHONE);
    const { problems, checked } = await walk(page, PHONE, pages(), { axe: false });
    await context.close();
    const signedOut = await walkPublic(PHONE, { axe: false });
    expect(checked.length).toBeGreaterThan(5);
    expect([...problems, ...signedOut.problems]).toEqual([]);
  }, 300_000);
});

/** The focused element, as the page sees it. */
const FOCUSED = `(() => { const el = document.activeElement; return { id: el?.id ?? '', tag: el?.tagName.toLowerCase() ?? '', text: (el?.textContent ?? '').trim(), href: el?.getAttribute('href') ?? '' }; })()`;

/** Presses Tab until `done` holds for the focused element (at most `max` times); the focused elements on the way. */
async function tabUntil(page: Page, done: (focused: { id: string; tag: string; text: string; href: string }) => boolean, max = 80) {
  const seen: { id: string; tag: string; text: string; href: string }[] = [];
  for (let i = 0; i < max; i++) {
    await page.keyboard.press('Tab');
    const f = await page.evaluate<{ id: string; tag: string; text: string; href: string }>(FOCUSED);
    seen.push(f);
    if (done(f)) return seen;
  }
  throw new Error(`Tab never reached the control; focus went through ${JSON.stringify(seen.map((s) => s.id || s.href || s.text))}`);
}

describe('by keyboard alone', () => {
  it('the overview: Tab goes through the navigation in its order, then to sign-out', async () => {
    const { context, page } = await signedIn(1280);
    const nav = await page.locator('nav a').evaluateAll((as) => as.map((a) => a.getAttribute('href') ?? ''));
    expect(nav).toEqual(expect.arrayContaining(['/app', '/app/keys', '/app/billing']));
    const seen = await tabUntil(page, (f) => f.tag === 'button' && /sign out/i.test(f.text));
    expect(seen.map((s) => s.href).filter((h) => nav.includes(h))).toEqual(nav);
    await context.close();
  }, 120_000);

  it('API keys: Tab reaches the create form field by field, and Enter creates the key', async () => {
    const { context, page } = await signedIn(1280);
    await page.goto(`${base}/app/keys`);
    await tabUntil(page, (f) => f.id === 'name');
    const name = `keyboard key ${Date.now()}`;
    await page.keyboard.type(name);
    const order: string[] = [];
    for (let i = 0; i < 5; i++) {
      await page.keyboard.press('Tab');
      const f = await page.evaluate<{ id: string; text: string }>(FOCUSED);
      order.push(f.id || f.text);
    }
    expect(order).toEqual(['rate_limit_rpm', 'limit', 'limit_reset', 'expires_at', 'Create key']);
    await page.keyboard.press('Enter');
    await page.waitForURL(/\/app\/keys$/);
    await expect.poll(() => page.locator('#new-key').count()).toBe(1);
    expect(await db('api_keys').where({ account_id: A.accountId, name })).toHaveLength(1);
    await context.close();
  }, 120_000);

  it('Billing: Tab reaches the top-up amount, and Enter starts the payment', async () => {
    const { context, page } = await signedIn(1280);
    await page.goto(`${base}/app/billing`);
    await tabUntil(page, (f) => f.id === 'amount');
    await page.keyboard.type('25');
    // The answer sends the browser to the payment provider's page (not served here): the post and its checkout are what count.
    const posted = page.waitForRequest((r) => r.url().endsWith('/app/billing/top-up') && r.method() === 'POST');
    await page.keyboard.press('Enter');
    expect((await posted).postData()).toContain('amount=25');
    await untilTrue(async () => (await db('checkout_sessions').where({ account_id: A.accountId })).length === 1, { timeoutMs: 15_000, message: 'the checkout session of the keyboard top-up' });
    await context.close();
  }, 120_000);
});
