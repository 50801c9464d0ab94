import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminApp } from '../../src/admin/app';
import { systemClock } from '../../src/clock';
import { customerConsoleService } from '../../src/customerConsole/customerConsole.service';
import { browser as makeBrowser, csrfOf, customerWithPassword, hidden, SESSION_COOKIE, signedIn, signIn } from '../helpers/customerConsole';
import { silentLogger, testConfig, testDb } from '../helpers/env';
import { serve } from '../helpers/servers';

/**
 * Attacks on the customer console (/app) over HTTP, as a browser or a script
 * would make them: a session id chosen by the attacker, a signed-out or
 * superseded session's cookie, forged posts, over-long input, a `next`
 * redirect, and an account or user id slipped into the query or the form.
 */
const config = testConfig({ TRUSTED_PROXIES: 'loopback' });
const db = testDb(config);
const PASSWORD = 'correct horse battery staple';
let base: string;
let close: () => Promise<void>;
let lastOctet = 0;

beforeAll(async () => {
  const app = createAdminApp({ db, billing: config.billing, config, clock: systemClock, logger: silentLogger, readiness: {}, readyCheckTimeoutMs: 1000 });
  ({ url: base, close } = await serve(app));
});
afterAll(async () => {
  await close();
  await db.destroy();
});

const browser = () => makeBrowser(base, { 'x-forwarded-for': `198.51.100.${++lastOctet}` });

describe('customer sessions cannot be planted or replayed', () => {
  it('session fixation: a cookie value chosen by the attacker opens nothing, and signing in replaces it', async () => {
    const c = await customerWithPassword(db, config, PASSWORD);
    const chosen = randomBytes(32).toString('base64url');
    const victim = browser();
    victim.jar.set(SESSION_COOKIE, chosen);
    const before = await victim.get('/app');
    expect(before.status).toBe(303);
    expect(before.location).toBe('/app/login');
    expect(signedIn(await signIn(victim, c.email, PASSWORD))).toBe(true);
    const issued = victim.jar.get(SESSION_COOKIE);
    expect(issued).toBeDefined();
    expect(issued).not.toBe(chosen);
    // The attacker's copy of the value they chose still opens nothing.
    const attacker = browser();
    attacker.jar.set(SESSION_COOKIE, chosen);
    expect((await attacker.get('/app')).status).toBe(303);
    // Nor does a stored hash used as a cookie.
    const row = await db('customer_sessions').where({ user_id: c.userId }).first('id_hash');
    attacker.jar.set(SESSION_COOKIE, row.id_hash);
    expect((await attacker.get('/app')).status).toBe(303);
  });

  it("a signed-out session's cookie, and one ended by a password change, are refused for pages and actions", async () => {
    const c = await customerWithPassword(db, config, PASSWORD);
    const b = browser();
    expect(signedIn(await signIn(b, c.email, PASSWORD))).toBe(true);
    const stolen = b.jar.get(SESSION_COOKIE)!;
    const csrf = await csrfOf(b);
    await b.post('/app/logout', { _csrf: csrf });
    const thief = browser();
    thief.jar.set(SESSION_COOKIE, stolen);
    expect((await thief.get('/app')).location).toBe('/app/login');
    const act = await thief.post('/app/security/sign-out-everywhere', { _csrf: csrf });
    expect(act.status).toBe(303);
    expect(act.location).toBe('/app/login');

    const again = browser();
    expect(signedIn(await signIn(again, c.email, PASSWORD))).toBe(true);
    await customerConsoleService({ db }).setPassword(c.userId, 'another long passphrase');
    expect((await again.get('/app')).location).toBe('/app/login');
  });

  it("an erased user's session ends", async () => {
    const c = await customerWithPassword(db, config, PASSWORD);
    const b = browser();
    expect(signedIn(await signIn(b, c.email, PASSWORD))).toBe(true);
    await db('users').where({ id: c.userId }).update({ erased_at: new Date() });
    expect((await b.get('/app')).location).toBe('/app/login');
    expect(signedIn(await signIn(browser(), c.email, PASSWORD))).toBe(false);
  });
});

describe('forged requests', () => {
  it('a sign-in posted without the form token (login CSRF) is refused and opens no session', async () => {
    const c = await customerWithPassword(db, config, PASSWORD);
    const forged = await browser().post('/app/login', { email: c.email, password: PASSWORD });
    expect(forged.status).toBe(403);
    expect(forged.setCookie.some((x) => x.startsWith(`${SESSION_COOKIE}=`))).toBe(false);
    // A token from the attacker's own visit does not match the victim's cookie.
    const token = hidden((await browser().get('/app/login')).body, '_csrf');
    const victim = browser();
    await victim.get('/app/login');
    expect((await victim.post('/app/login', { _csrf: token, email: c.email, password: PASSWORD })).status).toBe(403);
    expect(victim.jar.has(SESSION_COOKIE)).toBe(false);
  });

  it("another session's CSRF token does not work, and sign-out without a token ends nothing", async () => {
    const c = await customerWithPassword(db, config, PASSWORD);
    const mine = browser();
    expect(signedIn(await signIn(mine, c.email, PASSWORD))).toBe(true);
    const other = await customerWithPassword(db, config, PASSWORD);
    const attacker = browser();
    expect(signedIn(await signIn(attacker, other.email, PASSWORD))).toBe(true);
    const attackersToken = await csrfOf(attacker);
    expect((await mine.post('/app/security/sign-out-everywhere', { _csrf: attackersToken })).status).toBe(403);
    // A cross-site sign-out (no token) clears this browser's cookie but does not end the session server-side.
    const cookie = mine.jar.get(SESSION_COOKIE)!;
    await mine.post('/app/logout', {});
    const replay = makeBrowser(base);
    replay.jar.set(SESSION_COOKIE, cookie);
    expect((await replay.get('/app')).status).toBe(200);
  });
});

describe('input from outside is bounded', () => {
  it('an over-long email or password is refused before any lookup, with a page, not a stack trace', async () => {
    const c = await customerWithPassword(db, config, PASSWORD);
    for (const [email, password] of [
      [`${'a'.repeat(300)}@example.com`, PASSWORD],
      [c.email, 'p'.repeat(5_000)],
    ] as const) {
      const b = browser();
      const r = await signIn(b, email, password);
      expect(r.status).toBe(400);
      expect(r.body).toContain('Sign-in failed');
      expect(r.body).not.toMatch(/at .*\.ts:\d+/);
      expect(b.jar.has(SESSION_COOKIE)).toBe(false);
    }
    const events = await db('security_events').where({ kind: 'customer_login_failed', reason: 'input_too_long' }).whereRaw('source_ip <<= ?::inet', ['198.51.100.0/24']);
    expect(events.length).toBeGreaterThanOrEqual(2);
    expect(JSON.stringify(events)).not.toContain('aaaaaaaaaa');
    // The user's own attempts are not counted by someone else's over-long guesses.
    expect(signedIn(await signIn(browser(), c.email, PASSWORD))).toBe(true);
  });

  it('a body over the limit is refused, and odd field types are no crash', async () => {
    const b = browser();
    const token = hidden((await b.get('/app/login')).body, '_csrf');
    const huge = await b.post('/app/login', { _csrf: token, email: 'x@example.com', password: 'p'.repeat(70_000) });
    expect(huge.status).toBe(413);
    expect(huge.body).not.toMatch(/at .*\.ts:\d+/);
    const res = await fetch(`${base}/app/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: [...b.jar].map(([k, v]) => `${k}=${v}`).join('; '), 'x-forwarded-for': '198.51.100.250' },
      body: `_csrf=${token}&email=a@example.com&email=b@example.com&password[x]=1`,
    });
    expect(res.status).toBeLessThan(500);
  });
});

describe('no redirect or account id is taken from the request', () => {
  it('a `next` parameter is ignored: sign-in always lands on /app', async () => {
    const c = await customerWithPassword(db, config, PASSWORD);
    for (const next of ['https://evil.example/', '//evil.example', '/\\evil.example', '/app/../console']) {
      const b = browser();
      const form = await b.get(`/app/login?next=${encodeURIComponent(next)}`);
      expect(form.body).not.toContain('evil.example');
      const r = await b.post('/app/login', { _csrf: hidden(form.body, '_csrf'), email: c.email, password: PASSWORD, next });
      expect(r.status).toBe(303);
      expect(r.location).toBe('/app');
    }
    // Signed-out pages send to the sign-in page only.
    const anon = await browser().get('/app?next=https://evil.example/');
    expect(anon.location).toBe('/app/login');
  });

  it("an account or user id in the query or the form never shows or changes another account's data", async () => {
    const victim = await customerWithPassword(db, config, PASSWORD, { balance: '999.99', name: 'Victim Corp' });
    const attackerAccount = await customerWithPassword(db, config, PASSWORD, { name: 'Attacker Corp' });
    const v = browser();
    expect(signedIn(await signIn(v, victim.email, PASSWORD))).toBe(true);
    const a = browser();
    expect(signedIn(await signIn(a, attackerAccount.email, PASSWORD))).toBe(true);
    for (const path of [
      `/app?accountId=${victim.accountId}`,
      `/app?account_id=${victim.accountId}`,
      `/app/?accountId=${victim.accountId}`,
      `/app/security?userId=${victim.userId}&accountId=${victim.accountId}`,
      `/app/${victim.accountId}`,
      `/app/accounts/${victim.accountId}`,
    ]) {
      const r = await a.get(path);
      expect(r.body, path).not.toContain('Victim Corp');
      expect(r.body, path).not.toContain('999.99');
    }
    const out = await a.post('/app/security/sign-out-everywhere', { _csrf: await csrfOf(a), userId: victim.userId, accountId: victim.accountId });
    expect(out.status).toBe(303);
    expect((await v.get('/app')).status).toBe(200);
    expect(await db('customer_sessions').where({ user_id: victim.userId }).whereNull('revoked_at')).toHaveLength(1);
  });

  it("a customer session opens no staff console page", async () => {
    const c = await customerWithPassword(db, config, PASSWORD);
    const b = browser();
    expect(signedIn(await signIn(b, c.email, PASSWORD))).toBe(true);
    const staffPage = await b.get('/console/accounts');
    expect(staffPage.status).toBe(303);
    expect(staffPage.location).toMatch(/^\/console\/login/);
  });
});
