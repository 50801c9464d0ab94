import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminApp } from '../../src/admin/app';
import { systemClock } from '../../src/clock';
import { CONSENT_COOKIE, INITIAL_POLICY_VERSION, utcDay } from '../../src/customerConsole/consent.rules';
import { browser as makeBrowser, customerWithPassword, hidden, signedIn, signIn, type Browser } from '../helpers/customerConsole';
import { silentLogger, testConfig, testDb, testEnv } from '../helpers/env';
import { runCli, runCliJson } from '../helpers/cli';
import { serve } from '../helpers/servers';
import { runCategory } from '../../src/retention/expiry.service';
import { collectSubjectData, findSubject } from '../../src/privacy/privacy.data';

/**
 * Cookie and analytics consent in the customer console (issue 26): the
 * banner until a choice is made, the choice as a consent record (policy
 * version, categories, time) for a signed-in user, and page views counted
 * per route pattern only with agreement to analytics.
 *
 * page_view_counts is shared by every test file; this file counts only
 * /app/usage, /app/security and /app/cookies (the security tests count
 * /app/keys), and compares before and after.
 */
const config = testConfig({ TRUSTED_PROXIES: 'loopback' });
const db = testDb(config);
const PASSWORD = 'correct horse battery staple';
let base: string;
let close: () => Promise<void>;
let lastOctet = 0;
const browser = () => makeBrowser(base, { 'x-forwarded-for': `198.51.100.${++lastOctet}` });
/** A signed-out post as a browser sends it from a page of this site. */
const SAME_SITE = { 'sec-fetch-site': 'same-origin' };

beforeAll(async () => {
  const app = createAdminApp({ db, billing: config.billing, config, clock: systemClock, logger: silentLogger, readiness: {}, readyCheckTimeoutMs: 1000 });
  ({ url: base, close } = await serve(app));
});
afterAll(async () => {
  await close();
  await db.destroy();
});

const views = async (page: string): Promise<number> => Number((await db('page_view_counts').where({ day: utcDay(new Date()), page }).first('views'))?.views ?? 0);
const cookieRecords = (userId: string) => db('consent_records').where({ user_id: userId, purpose: 'cookies' }).orderBy('id').select('granted', 'categories', 'policy_version', 'source', 'at');
const BANNER = 'class="consent-banner"';

async function signedInAs(email: string, b: Browser = browser()): Promise<Browser> {
  expect(signedIn(await signIn(b, email, PASSWORD))).toBe(true);
  return b;
}

/** Chooses in the banner of `page`, as a person clicks one of its buttons. */
async function chooseIn(b: Browser, page: string, choice: 'analytics' | 'necessary', extra: Record<string, string> = {}) {
  const shown = await b.get(page);
  expect(shown.body).toContain(BANNER);
  const csrf = hidden(shown.body, '_csrf');
  return b.post('/app/consent', { ...(csrf ? { _csrf: csrf } : {}), back: hidden(shown.body, 'back'), choice }, extra);
}

describe('the cookie banner', () => {
  it('is shown on the sign-in page and on every signed-in page until a choice is made, then no more', async () => {
    const c = await customerWithPassword(db, config, PASSWORD);
    const b = browser();
    const login = await b.get('/app/login');
    expect(login.status).toBe(200);
    expect(login.body).toContain(BANNER);
    expect(login.body).toContain('action="/app/consent"');
    expect(login.body).toContain('Accept analytics');
    expect(login.body).toContain('Only necessary cookies');
    expect(login.body).toContain('href="/app/cookies"');
    expect(login.setCookie.some((x) => x.startsWith(`${CONSENT_COOKIE}=`))).toBe(false); // nothing optional, not even the choice, before a choice
    await signedInAs(c.email, b);
    for (const page of ['/app', '/app/security', '/app/usage', '/app/cookies']) expect((await b.get(page)).body, page).toContain(BANNER);

    const chose = await chooseIn(b, '/app/security', 'necessary');
    expect(chose.status).toBe(303);
    expect(chose.location).toBe('/app/security?msg=cookies_saved');
    const set = chose.setCookie.find((x) => x.startsWith(`${CONSENT_COOKIE}=`))!;
    expect(set).toMatch(/; Path=\/; HttpOnly; Secure; SameSite=Lax; Max-Age=31536000$/);
    expect(set).toMatch(/=[0-9A-Za-z._-]+~necessary~\d+;/);
    for (const page of ['/app', '/app/security', '/app/cookies']) expect((await b.get(page)).body, page).not.toContain(BANNER);
  });
});

describe('analytics with consent only', () => {
  it('counts nothing without a choice or with necessary cookies only', async () => {
    const c = await customerWithPassword(db, config, PASSWORD);
    const b = await signedInAs(c.email);
    const before = await views('/app/usage');
    await b.get('/app/usage');
    expect(await views('/app/usage')).toBe(before);
    await chooseIn(b, '/app/usage', 'necessary');
    await b.get('/app/usage');
    await b.get('/app/usage');
    expect(await views('/app/usage')).toBe(before);
    expect(await cookieRecords(c.userId)).toHaveLength(1);
  });

  it('accept: a consent record with version, categories and time; views counted per route pattern; necessary-only stops the count', async () => {
    const c = await customerWithPassword(db, config, PASSWORD);
    const b = await signedInAs(c.email);
    const t0 = new Date(Date.now() - 1000);
    const accepted = await chooseIn(b, '/app/usage', 'analytics');
    expect(accepted.location).toBe('/app/usage?msg=cookies_saved');
    const [rec] = await cookieRecords(c.userId);
    expect(rec).toMatchObject({ granted: true, categories: ['analytics'], source: 'console' });
    expect(new Date(rec.at).getTime()).toBeGreaterThanOrEqual(t0.getTime());
    // The version in force: the last one published, or the initial one.
    const published = await db('privacy_policy_versions').pluck('version');
    expect([INITIAL_POLICY_VERSION, ...published]).toContain(rec.policy_version);
    expect(accepted.setCookie.find((x) => x.startsWith(`${CONSENT_COOKIE}=`))).toContain(`=${rec.policy_version}~analytics~`);

    const usage = await views('/app/usage');
    const security = await views('/app/security');
    await b.get('/app/usage?from=2026-01-01&to=2026-01-31');
    await b.get('/app/usage');
    await b.get('/app/security?utm=campaign');
    expect(await views('/app/usage')).toBe(usage + 2);
    expect(await views('/app/security')).toBe(security + 1);
    expect(await db('page_view_counts').where('page', 'like', '%?%').orWhere('page', 'like', '%utm%').first()).toBeUndefined();

    // Changed on the settings page: a new record, and counting stops.
    const settings = await b.get('/app/cookies');
    expect(settings.body).toContain('You agreed to page analytics.');
    const changed = await b.post('/app/consent', { _csrf: hidden(settings.body, '_csrf'), back: '/app/cookies', choice: 'necessary' });
    expect(changed.location).toBe('/app/cookies?msg=cookies_saved');
    const records = await cookieRecords(c.userId);
    expect(records.map((r) => [r.granted, r.categories])).toEqual([
      [true, ['analytics']],
      [false, []],
    ]);
    const after = await views('/app/usage');
    await b.get('/app/usage');
    expect(await views('/app/usage')).toBe(after);
    const history = await b.get('/app/cookies');
    expect(history.body).toContain('Only strictly necessary cookies: no page analytics.');
    expect(history.body).toContain('Your choices (newest first)');
    expect(history.body.match(/<td>(agreed|not agreed)<\/td>/g)).toEqual(['<td>not agreed</td>', '<td>agreed</td>']);
  });

  it('a choice made before signing in is recorded for the user once signed in, once', async () => {
    const c = await customerWithPassword(db, config, PASSWORD);
    const b = browser();
    const chose = await chooseIn(b, '/app/login', 'analytics', SAME_SITE);
    expect(chose.status).toBe(303);
    expect(chose.location).toBe('/app/login?msg=cookies_saved');
    expect(await cookieRecords(c.userId)).toHaveLength(0);
    await signedInAs(c.email, b);
    const cookies = await views('/app/cookies');
    const page = await b.get('/app/cookies');
    expect(page.body).not.toContain(BANNER);
    expect(await cookieRecords(c.userId)).toMatchObject([{ granted: true, categories: ['analytics'], source: 'console' }]);
    expect(await views('/app/cookies')).toBe(cookies + 1);
    await b.get('/app/cookies');
    expect(await cookieRecords(c.userId)).toHaveLength(1);

    // Another browser of the same user takes the recorded choice: no banner, and its withdrawal there stops the count here.
    const other = await signedInAs(c.email);
    const first = await other.get('/app/security');
    expect(first.body).not.toContain(BANNER);
    expect(first.setCookie.find((x) => x.startsWith(`${CONSENT_COOKIE}=`))).toContain('~analytics~');
    const settings = await other.get('/app/cookies');
    await other.post('/app/consent', { _csrf: hidden(settings.body, '_csrf'), back: '/app/cookies', choice: 'necessary' });
    const usage = await views('/app/usage');
    const back = await b.get('/app/usage');
    expect(back.setCookie.find((x) => x.startsWith(`${CONSENT_COOKIE}=`))).toContain('~necessary~');
    expect(await views('/app/usage')).toBe(usage);
    expect((await cookieRecords(c.userId)).map((r) => r.granted)).toEqual([true, false]);
  });
});

describe('retention', () => {
  it('page view counts go 13 months after their day (category page_view_counts), newer days stay', async () => {
    const policy = await db('retention_policies').where({ category: 'page_view_counts' }).first();
    expect(policy).toMatchObject({ period: 395, unit: 'days', action: 'delete', legal_basis: expect.stringContaining('Art. 6(1)(a)') });
    const now = new Date('2026-12-05T12:00:00Z');
    const page = `/app/retention-${Math.random().toString(36).slice(2, 8)}`;
    await db('page_view_counts').insert([
      { day: '2025-11-04', page, views: 3 }, // 396 days before: gone
      { day: '2025-11-05', page, views: 4 }, // the cutoff's day: kept
      { day: '2026-12-05', page, views: 5 },
    ]);
    const out = await runCategory({ db, now, batchSize: 1 }, policy);
    expect(out.expiredRows).toBeGreaterThanOrEqual(1);
    const left = await db('page_view_counts').where({ page }).orderBy('day').select(db.raw(`to_char(day, 'YYYY-MM-DD') AS day`), 'views');
    expect(left.map((r: { day: string; views: unknown }) => [r.day, Number(r.views)])).toEqual([
      ['2025-11-05', 4],
      ['2026-12-05', 5],
    ]);
  });
});

describe('your data', () => {
  it('the copy of your data holds your cookie choices with their version and categories', async () => {
    const c = await customerWithPassword(db, config, PASSWORD);
    const b = await signedInAs(c.email);
    await chooseIn(b, '/app/security', 'analytics');
    const data = await collectSubjectData(db, await findSubject(db, c.email, c.accountId), 'unused', { portable: false });
    const [rec] = await cookieRecords(c.userId);
    expect(data.consents).toEqual([expect.objectContaining({ purpose: 'cookies', granted: true, categories: ['analytics'], policy_version: rec.policy_version, source: 'console' })]);
  });
});

describe('staff see aggregates only', () => {
  it('`mixroute analytics page-views` lists views per day and page, and nothing about anyone', async () => {
    const c = await customerWithPassword(db, config, PASSWORD);
    const b = await signedInAs(c.email);
    await chooseIn(b, '/app/usage', 'analytics');
    await b.get('/app/usage');
    const env = testEnv(config);
    const rows = await runCliJson<{ day: string; page: string; views: string }[]>(['analytics', 'page-views', '--days', '2', '--json'], env);
    const today = rows.find((r) => r.day === utcDay(new Date()) && r.page === '/app/usage');
    expect(Number(today?.views)).toBeGreaterThanOrEqual(1);
    for (const r of rows) expect(Object.keys(r).sort()).toEqual(['day', 'page', 'views']);
    const bad = await runCli(['analytics', 'page-views', '--days', '0'], env);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('--days must be a whole number from 1 to 400');
    expect(bad.stderr).not.toMatch(/\bat .*\.ts:\d+/);
  });
});
