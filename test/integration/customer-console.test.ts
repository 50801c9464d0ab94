import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminApp } from '../../src/admin/app';
import { systemClock } from '../../src/clock';
import { monthBounds } from '../../src/customerConsole/customerConsole.rules';
import { FROM_SOURCES } from '../helpers/cli';
import { browser as makeBrowser, csrfOf, customerWithPassword, SESSION_COOKIE, signedIn, signIn } from '../helpers/customerConsole';
import { silentLogger, testConfig, testDb, testEnv } from '../helpers/env';
import { serve } from '../helpers/servers';

/**
 * The customer console at /app over HTTP (issue 26, first slice): sign-in,
 * throttling, the session cookie, CSRF, sign-out, "sign out everywhere", the
 * overview's figures, and one account's user never seeing another's data.
 */
// Behind a proxy on loopback, so X-Forwarded-For names the client: each test browses from its own address.
const config = testConfig({ TRUSTED_PROXIES: 'loopback' });
const db = testDb(config);
const PASSWORD = 'correct horse battery staple';
const CHROME_LINUX = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';
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

/** A browser at an address of its own (the per-address limit is 10 a minute). */
const browser = (headers: Record<string, string> = {}) => makeBrowser(base, { 'x-forwarded-for': `203.0.113.${++lastOctet}`, ...headers });

describe('customer sign-in', () => {
  it('signs a user in with the right password: a Secure, HttpOnly, SameSite=Strict __Host- cookie and a login record', async () => {
    const c = await customerWithPassword(db, config, PASSWORD);
    const b = browser({ 'user-agent': CHROME_LINUX });
    const r = await signIn(b, c.email, PASSWORD);
    expect(signedIn(r)).toBe(true);
    const cookie = r.setCookie.find((x) => x.startsWith(`${SESSION_COOKIE}=`));
    expect(cookie).toBeDefined();
    const attrs = cookie!.split(';').map((a) => a.trim().toLowerCase());
    expect(attrs).toEqual(expect.arrayContaining(['path=/', 'httponly', 'secure', 'samesite=strict']));
    expect(attrs.some((a) => a.startsWith('domain='))).toBe(false);
    // Only the hash of the id is stored.
    const id = decodeURIComponent(b.jar.get(SESSION_COOKIE)!);
    const rows = await db('customer_sessions').where({ user_id: c.userId });
    expect(rows).toHaveLength(1);
    expect(rows[0].id_hash).not.toBe(id);
    expect(rows[0].account_id).toBe(c.accountId);
    expect(rows[0].ip_prefix).toMatch(/^203\.0\.113\.x$/);

    const logins = await db('login_records').where({ user_id: c.userId }).select(db.raw('host(source_ip) AS ip'), 'user_agent', 'success');
    expect(logins).toEqual([{ ip: `203.0.113.${lastOctet}`, user_agent: CHROME_LINUX, success: true }]);

    const overview = await b.get('/app');
    expect(overview.status).toBe(200);
    expect(overview.body).toContain(c.accountName);
    expect(overview.headers.get('content-security-policy')).toContain("default-src 'self'");
    expect(overview.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    expect(overview.headers.get('cache-control')).toBe('no-store');
  });

  it('refuses a wrong password: a security event without the email or the password, no session, no login record', async () => {
    const c = await customerWithPassword(db, config, PASSWORD);
    const b = browser();
    const r = await signIn(b, c.email, 'not the password at all');
    expect(r.status).toBe(303);
    expect(r.location).toBe('/app/login?msg=signin_failed');
    expect(b.jar.has(SESSION_COOKIE)).toBe(false);
    expect((await b.get('/app/login?msg=signin_failed')).body).toContain('Sign-in failed');
    expect(await db('login_records').where({ user_id: c.userId })).toHaveLength(0);
    const events = await db('security_events').where({ kind: 'customer_login_failed' }).whereRaw('host(source_ip) = ?', [`203.0.113.${lastOctet}`]);
    expect(events).toHaveLength(1);
    expect(events[0].reason).toBe('bad_password_or_unknown_email');
    expect(JSON.stringify(events)).not.toContain(c.email);
    expect(JSON.stringify(events)).not.toContain('not the password');
    // A user without a password cannot sign in with any.
    await db('users').where({ id: c.userId }).update({ password_hash: null });
    expect(signedIn(await signIn(browser(), c.email, PASSWORD))).toBe(false);
  });

  it("throttles guesses at one user's password from many addresses: refused even with the right one, recorded, no login record", async () => {
    const c = await customerWithPassword(db, config, PASSWORD);
    for (let i = 1; i <= 5; i++) {
      const r = await signIn(browser(), c.email, `guess number ${i}`);
      expect(r.location, `guess ${i}`).toBe('/app/login?msg=signin_failed');
    }
    const sixth = await signIn(browser(), c.email.toUpperCase(), PASSWORD);
    expect(sixth.status).toBe(429);
    expect(sixth.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(sixth.body).toContain('Too many sign-in attempts');
    expect(sixth.setCookie.some((x) => x.startsWith(`${SESSION_COOKIE}=`))).toBe(false);
    expect(await db('login_records').where({ user_id: c.userId })).toHaveLength(0);
    const throttled = await db('security_events').where({ kind: 'customer_login_failed', reason: 'throttled' }).whereRaw('host(source_ip) = ?', [`203.0.113.${lastOctet}`]);
    expect(throttled).toHaveLength(1);
    // Another user is not locked out.
    const other = await customerWithPassword(db, config, PASSWORD);
    expect(signedIn(await signIn(browser(), other.email, PASSWORD))).toBe(true);
  });

  it('sets a password with `mixroute users set-password`, read from standard input', async () => {
    const c = await customerWithPassword(db, config, PASSWORD);
    const fresh = 'a brand new passphrase for the console';
    const child = spawn(process.execPath, [...FROM_SOURCES, 'users', 'set-password', c.userId, '--json'], { env: testEnv(config), stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdin.end(`${fresh}\n`);
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    expect(code, stderr).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({ userId: c.userId });
    expect(stdout).not.toContain(fresh);
    expect(signedIn(await signIn(browser(), c.email, PASSWORD))).toBe(false);
    expect(signedIn(await signIn(browser(), c.email, fresh))).toBe(true);
  });
});

describe('customer sessions', () => {
  it('refuses a POST without the CSRF token or with a wrong one, and the session goes on', async () => {
    const c = await customerWithPassword(db, config, PASSWORD);
    const b = browser();
    expect(signedIn(await signIn(b, c.email, PASSWORD))).toBe(true);
    const none = await b.post('/app/security/sign-out-everywhere', {});
    expect(none.status).toBe(403);
    const wrong = await b.post('/app/security/sign-out-everywhere', { _csrf: 'x'.repeat(32) });
    expect(wrong.status).toBe(403);
    const wrongHeader = await b.post('/app/security/sign-out-everywhere', {}, { 'x-csrf-token': 'y'.repeat(32) });
    expect(wrongHeader.status).toBe(403);
    expect((await b.get('/app')).status).toBe(200);
    expect(await db('customer_sessions').where({ user_id: c.userId }).whereNull('revoked_at')).toHaveLength(1);
  });

  it('signs out: the cookie is cleared and its value no longer opens a page', async () => {
    const c = await customerWithPassword(db, config, PASSWORD);
    const b = browser();
    expect(signedIn(await signIn(b, c.email, PASSWORD))).toBe(true);
    const cookie = b.jar.get(SESSION_COOKIE)!;
    const out = await b.post('/app/logout', { _csrf: await csrfOf(b) });
    expect(out.status).toBe(303);
    expect(out.location).toBe('/app/login?msg=signed_out');
    expect(b.jar.has(SESSION_COOKIE)).toBe(false);
    const replay = await makeBrowser(base).get('/app', { cookie: `${SESSION_COOKIE}=${cookie}` });
    expect(replay.status).toBe(303);
    expect(replay.location).toBe('/app/login');
  });

  it('"sign out everywhere" ends the user\'s other sessions too, and lists them first', async () => {
    const c = await customerWithPassword(db, config, PASSWORD);
    const laptop = browser({ 'user-agent': CHROME_LINUX });
    expect(signedIn(await signIn(laptop, c.email, PASSWORD))).toBe(true);
    const laptopOctet = lastOctet;
    const phone = browser({ 'user-agent': 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1' });
    expect(signedIn(await signIn(phone, c.email, PASSWORD))).toBe(true);

    const page = await phone.get('/app/security');
    expect(page.status).toBe(200);
    expect(page.body).toContain('Chrome on Linux');
    expect(page.body).toContain('Safari on iOS');
    expect(page.body).toContain(`203.0.113.x`);
    expect(page.body).not.toContain(`203.0.113.${laptopOctet}<`);
    expect(page.body).not.toContain(CHROME_LINUX);
    expect(page.body).toContain('this browser');

    const out = await phone.post('/app/security/sign-out-everywhere', { _csrf: await csrfOf(phone) });
    expect(out.status).toBe(303);
    expect(out.location).toBe('/app/login?msg=signed_out_everywhere');
    const other = await laptop.get('/app');
    expect(other.status).toBe(303);
    expect(other.location).toBe('/app/login');
    expect((await phone.get('/app')).status).toBe(303);
    expect(await db('customer_sessions').where({ user_id: c.userId }).whereNull('revoked_at')).toHaveLength(0);
  });
});

describe('the overview', () => {
  it("shows the account's balance, spendable, and spend this month and last", async () => {
    const c = await customerWithPassword(db, config, PASSWORD, { balance: '42.5' });
    const m = monthBounds(new Date());
    const row = (hour: Date, model: string, cost: string) => ({
      account_id: c.accountId, hour, model, provider: 'p', price_id: '', requests: 3, input_tokens: 10, cache_read_tokens: 0, cache_write_tokens: 0, output_tokens: 5, reasoning_tokens: 0, cost,
    });
    await db('usage_hourly').insert([
      row(m.thisMonth, 'model-a', '1.25'),
      row(new Date(Math.floor(Date.now() / 3_600_000) * 3_600_000), 'model-b', '0.5'),
      row(new Date(m.lastMonth.getTime() + 3_600_000), 'model-a', '7'),
    ]);
    const b = browser();
    expect(signedIn(await signIn(b, c.email, PASSWORD))).toBe(true);
    const page = await b.get('/app');
    expect(page.status).toBe(200);
    expect(page.body).toMatch(/id="balance">42\.50 USD</);
    expect(page.body).toMatch(/id="spendable">42\.50</);
    expect(page.body).toMatch(/id="spend-this-month">1\.75</);
    expect(page.body).toMatch(/id="spend-last-month">7\.00</);
    expect(page.body).toContain('model-b');
    expect(page.body).toContain('data-chart=');
  });

  it("never shows a user of account B account A's data, whatever the request names", async () => {
    const a = await customerWithPassword(db, config, PASSWORD, { balance: '111.11', name: 'Alpha Secret Ltd' });
    const bUser = await customerWithPassword(db, config, PASSWORD, { balance: '2.00', name: 'Bravo Ltd' });
    const alpha = browser();
    expect(signedIn(await signIn(alpha, a.email, PASSWORD))).toBe(true);
    const bravo = browser();
    expect(signedIn(await signIn(bravo, bUser.email, PASSWORD))).toBe(true);
    for (const path of ['/app', `/app?accountId=${a.accountId}`, `/app?account_id=${a.accountId}&account=${a.accountId}`, '/app/security', `/app/security?userId=${a.userId}`]) {
      const r = await bravo.get(path);
      expect(r.status, path).toBe(200);
      expect(r.body, path).not.toContain('Alpha Secret');
      expect(r.body, path).not.toContain('111.11');
      expect(r.body, path).not.toContain(a.accountId);
    }
    expect((await bravo.get('/app')).body).toContain('Bravo Ltd');
    // B's "sign out everywhere", even naming A, ends only B's sessions.
    await bravo.post('/app/security/sign-out-everywhere', { _csrf: await csrfOf(bravo), userId: a.userId, accountId: a.accountId });
    expect((await alpha.get('/app')).status).toBe(200);
  });
});
