import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminApp } from '../../src/admin/app';
import { systemClock } from '../../src/clock';
import { CONSENT_COOKIE, utcDay } from '../../src/customerConsole/consent.rules';
import { browser as makeBrowser, csrfOf, customerWithPassword, hidden, signedIn, signIn, type Browser } from '../helpers/customerConsole';
import { silentLogger, testConfig, testDb } from '../helpers/env';
import { serve } from '../helpers/servers';

/**
 * Attacks on cookie consent and page analytics (issue 26): a cookie the
 * server never wrote (forged shape, oversized, unknown category, from the
 * future), a consent given by another site (CSRF, signed in or not), a
 * return path leading off the site, and page names taken from the address.
 * This file counts only /app/keys and /app/keys/:id (the integration tests
 * count other pages), comparing before and after.
 */
const config = testConfig({ TRUSTED_PROXIES: 'loopback' });
const db = testDb(config);
const PASSWORD = 'correct horse battery staple';
let base: string;
let close: () => Promise<void>;
let lastOctet = 0;
const browser = () => makeBrowser(base, { 'x-forwarded-for': `198.51.100.${++lastOctet}` });
const BANNER = 'class="consent-banner"';
const t = () => Math.floor(Date.now() / 1000);

beforeAll(async () => {
  const app = createAdminApp({ db, billing: config.billing, config, clock: systemClock, logger: silentLogger, readiness: {}, readyCheckTimeoutMs: 1000 });
  ({ url: base, close } = await serve(app));
});
afterAll(async () => {
  await close();
  await db.destroy();
});

const views = async (page: string): Promise<number> => Number((await db('page_view_counts').where({ day: utcDay(new Date()), page }).first('views'))?.views ?? 0);
const records = (userId: string) => db('consent_records').where({ user_id: userId, purpose: 'cookies' });
const consentSet = (r: { setCookie: string[] }) => r.setCookie.find((x) => x.startsWith(`${CONSENT_COOKIE}=`));

async function signedInAs(email: string): Promise<Browser> {
  const b = browser();
  expect(signedIn(await signIn(b, email, PASSWORD))).toBe(true);
  return b;
}

describe('a consent cookie the server did not write is no choice', () => {
  it('forged, oversized, unknown-category and future cookies: the banner stays, nothing is recorded or counted', async () => {
    const c = await customerWithPassword(db, config, PASSWORD);
    const b = await signedInAs(c.email);
    for (const bad of [
      `2026-11-01~analytics+marketing~${t()}`,
      `2026-11-01~tracking~${t()}`,
      `2026-11-01~analytics+analytics~${t()}`,
      `2026-11-01~analytics~${t()}${'0'.repeat(200)}`,
      `${'v'.repeat(300)}~analytics~${t()}`,
      `2026-11-01~analytics~${t() + 86_400}`,
      'analytics',
      'true',
      '%E0%A4%A', // a malformed escape
      `2026-11-01~analytics~${t()}~extra`,
      `2026-11-01~analytics~-${t()}`,
    ]) {
      b.jar.set(CONSENT_COOKIE, bad);
      const before = await views('/app/keys');
      const page = await b.get('/app/keys');
      expect(page.status, bad).toBe(200);
      expect(page.body, bad).toContain(BANNER);
      expect(consentSet(page), bad).toBeUndefined();
      expect(await views('/app/keys'), bad).toBe(before);
    }
    expect(await records(c.userId)).toHaveLength(0);
    // The control: a value the server would write is a choice (recorded, counted, no banner).
    b.jar.set(CONSENT_COOKIE, `2026-11-01~analytics~${t()}`);
    const before = await views('/app/keys');
    expect((await b.get('/app/keys')).body).not.toContain(BANNER);
    expect(await views('/app/keys')).toBe(before + 1);
    expect(await records(c.userId)).toHaveLength(1);
  });

  it('a signed-out browser with such a cookie sees the banner on the sign-in page', async () => {
    const b = browser();
    b.jar.set(CONSENT_COOKIE, `2026-11-01~everything~${t()}`);
    expect((await b.get('/app/login')).body).toContain(BANNER);
  });
});

describe('consent cannot be given by another site', () => {
  it('signed in: the session CSRF token is required', async () => {
    const c = await customerWithPassword(db, config, PASSWORD);
    const victim = await signedInAs(c.email);
    const intruder = await signedInAs((await customerWithPassword(db, config, PASSWORD)).email);
    const intruderToken = await csrfOf(intruder);
    for (const form of <Record<string, string>[]>[{ choice: 'analytics', back: '/app' }, { choice: 'analytics', _csrf: '' }, { choice: 'analytics', _csrf: intruderToken }, { choice: 'analytics', _csrf: 'x'.repeat(5000) }]) {
      // Even a browser that claims to be same-origin needs the token once signed in.
      const r = await victim.post('/app/consent', form, { 'sec-fetch-site': 'same-origin' });
      expect(r.status).toBe(403);
      expect(consentSet(r)).toBeUndefined();
    }
    expect(await records(c.userId)).toHaveLength(0);
    const ok = await victim.post('/app/consent', { choice: 'analytics', _csrf: await csrfOf(victim) });
    expect(ok.status).toBe(303);
    expect(await records(c.userId)).toHaveLength(1);
  });

  it('signed out: only a post the browser marks as from this site', async () => {
    const b = browser();
    const host = new URL(base).host;
    for (const headers of <Record<string, string>[]>[{}, { 'sec-fetch-site': 'cross-site' }, { 'sec-fetch-site': 'same-site' }, { 'sec-fetch-site': 'none' }, { origin: 'https://evil.example' }, { origin: 'null' }, { origin: `http://${host}.evil.example` }, { 'sec-fetch-site': 'cross-site', origin: `http://${host}` }]) {
      const r = await b.post('/app/consent', { choice: 'analytics', back: '/app/login' }, headers);
      expect(r.status, JSON.stringify(headers)).toBe(403);
      expect(r.body).not.toMatch(/at .*\.ts:\d+/); // a message, never a stack
      expect(consentSet(r)).toBeUndefined();
    }
    for (const headers of <Record<string, string>[]>[{ 'sec-fetch-site': 'same-origin' }, { origin: `http://${host}` }]) {
      const r = await b.post('/app/consent', { choice: 'necessary', back: '/app/login' }, headers);
      expect(r.status, JSON.stringify(headers)).toBe(303);
      expect(consentSet(r)).toMatch(/~necessary~/);
    }
  });

  it('an unknown choice changes nothing', async () => {
    const b = browser();
    for (const choice of ['everything', 'analytics,marketing', '']) {
      const r = await b.post('/app/consent', { choice }, { 'sec-fetch-site': 'same-origin' });
      expect(r.status).toBe(303);
      expect(r.location).toBe('/app/cookies?msg=cookies_choice_invalid');
      expect(consentSet(r)).toBeUndefined();
    }
  });
});

describe('no open redirect', () => {
  it('returns only to a page of the console', async () => {
    const b = browser();
    const post = (back: string) => b.post('/app/consent', { choice: 'necessary', back }, { 'sec-fetch-site': 'same-origin' });
    for (const back of ['https://evil.example/', '//evil.example/app', '/\\evil.example', 'javascript:alert(1)', '/app/keys?next=https://evil.example', '/app/../evil', `/app/${'a'.repeat(100)}`, '/app/keys/:id']) {
      expect((await post(back)).location, back).toBe('/app?msg=cookies_saved');
    }
    expect((await post('/app/keys')).location).toBe('/app/keys?msg=cookies_saved');
    expect((await post('/app/login')).location).toBe('/app/login?msg=cookies_saved');
    // The Referer is not followed either.
    const r = await b.post('/app/consent', { choice: 'necessary' }, { 'sec-fetch-site': 'same-origin', referer: 'https://evil.example/' });
    expect(r.location).toBe('/app?msg=cookies_saved');
  });

  it('the banner does not echo an address it was not given by the route list', async () => {
    const c = await customerWithPassword(db, config, PASSWORD);
    const b = await signedInAs(c.email);
    const page = await b.get('/app/keys/%22%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E');
    expect(page.body).not.toContain('<script>alert(1)');
    const banner = await b.get('/app/keys?x="><script>');
    expect(hidden(banner.body, 'back')).toBe('/app/keys');
  });
});

describe('analytics name pages by their route, never by the address', () => {
  it('a query, an id or an odd spelling counts as the route pattern', async () => {
    const c = await customerWithPassword(db, config, PASSWORD);
    const b = await signedInAs(c.email);
    await b.post('/app/consent', { choice: 'analytics', _csrf: await csrfOf(b) });
    const keys = await views('/app/keys');
    const one = await views('/app/keys/:id');
    await b.get('/app/keys?secret=x');
    await b.get('/APP/Keys/');
    await b.get('/app/keys/00000000-0000-0000-0000-000000000000?secret=y');
    await b.get('/app/no-such-page?secret=z');
    expect(await views('/app/keys')).toBe(keys + 2);
    expect(await views('/app/keys/:id')).toBe(one + 1);
    const pages: string[] = await db('page_view_counts').distinct('page').pluck('page');
    for (const p of pages) expect(p).toMatch(/^\/app(\/[a-z0-9._-]+|\/:[a-z]+)*$/);
    expect(pages.some((p) => /secret|no-such|KEYS|00000000/.test(p))).toBe(false);
  });

  it("a page the user's role may not open is not counted", async () => {
    const c = await customerWithPassword(db, config, PASSWORD);
    await db('users').where({ id: c.userId }).update({ console_role: 'billing' });
    const b = await signedInAs(c.email);
    await b.post('/app/consent', { choice: 'analytics', _csrf: await csrfOf(b) });
    const keys = await views('/app/keys');
    expect((await b.get('/app/keys')).status).toBe(403);
    expect(await views('/app/keys')).toBe(keys);
  });
});
