import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminApp } from '../../src/admin/app';
import { systemClock } from '../../src/clock';
import { customerRoutesOf } from '../../src/customerConsole/app';
import type { CustomerRoute } from '../../src/customerConsole/pages/kit';
import { browser as makeBrowser, customerWithPassword, hidden, SESSION_COOKIE, signedIn, signIn, type Browser } from '../helpers/customerConsole';
import { eventually } from '../helpers/eventually';
import { enableTwoStep, linkTokensTo, postSecondFactor } from '../helpers/secondFactor';
import { testConfig, testDb } from '../helpers/env';
import { serve } from '../helpers/servers';

/**
 * Attacks on two-step sign-in and sign-in links (issue 26), over HTTP: a
 * pending session (password right, code not given) used for pages and
 * actions, codes replayed, guessed from many addresses or after a recovery
 * code was spent; links replayed, expired, for removed or erased users, asked
 * for too often or for unknown addresses; and the token kept out of the logs.
 */
const config = testConfig({ TRUSTED_PROXIES: 'loopback', DATA_DIR: fs.mkdtempSync(path.join(os.tmpdir(), 'mixroute-2fa-sec-')) });
const db = testDb(config);
const PASSWORD = 'correct horse battery staple';
let base: string;
let close: () => Promise<void>;
let routes: readonly CustomerRoute[];
let lastOctet = 0;
const logLines: string[] = [];

beforeAll(async () => {
  // Every level, every line: what the tests search for tokens.
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      logLines.push(chunk.toString());
      done();
    },
  });
  const logger = pino({ level: 'trace' }, sink);
  const app = createAdminApp({ db, billing: config.billing, config, clock: systemClock, logger, readiness: {}, readyCheckTimeoutMs: 1000 });
  routes = customerRoutesOf(app);
  ({ url: base, close } = await serve(app));
});
afterAll(async () => {
  await close();
  await db.destroy();
});

const browser = () => makeBrowser(base, { 'x-forwarded-for': `198.51.100.${(++lastOctet % 250) + 1}` });

/** A user with two-step sign-in on, and a second browser holding a pending session of theirs. */
async function pendingUser() {
  const c = await customerWithPassword(db, config, PASSWORD);
  const owner = browser();
  expect(signedIn(await signIn(owner, c.email, PASSWORD))).toBe(true);
  const t = await enableTwoStep(owner);
  const b = browser();
  const r = await signIn(b, c.email, PASSWORD);
  expect(r.location).toBe('/app/login/second-factor');
  return { c, t, b, owner };
}

async function askForLink(b: Browser, email: string) {
  const form = await b.get('/app/login');
  return b.post('/app/login/link-request', { _csrf: hidden(form.body, '_csrf'), email });
}

async function followLink(b: Browser, token: string) {
  const confirm = await b.get(`/app/login/link?token=${token}`);
  return b.post('/app/login/link', { _csrf: hidden(confirm.body, '_csrf'), token });
}

/** The first link mailed to the address, once it is there. */
const firstToken = (email: string) =>
  eventually(
    () => {
      const [t] = linkTokensTo(config, email);
      expect(t).toMatch(/^[A-Za-z0-9_-]{43}$/);
      return t!;
    },
    { timeoutMs: 10_000, message: 'the sign-in link email' },
  );

const concrete = (p: string) => p.replace(/:\w+/g, randomUUID());

describe('a pending session is not a signed-in session', () => {
  it('opens no page and performs no action of the registry, even with its own CSRF token', async () => {
    const { c, b } = await pendingUser();
    const csrf = hidden((await b.get('/app/login/second-factor')).body, '_csrf');
    expect(csrf).not.toBe('');
    expect(routes.length).toBeGreaterThan(5);
    const openBefore = await db('customer_sessions').where({ user_id: c.userId }).whereNull('revoked_at');
    for (const r of routes) {
      const res = r.method === 'GET' ? await b.get(concrete(r.path)) : await b.post(concrete(r.path), { _csrf: csrf, code: '123456', password: PASSWORD, name: 'probe' });
      expect(res.status, `${r.method} ${r.path}`).toBe(303);
      expect(res.location, `${r.method} ${r.path}`).toBe('/app/login');
    }
    // Nothing was done: no session ended, the factor still on, no key made.
    expect(await db('customer_sessions').where({ user_id: c.userId }).whereNull('revoked_at')).toHaveLength(openBefore.length);
    expect((await db('user_totp').where({ user_id: c.userId }).first()).confirmed_at).not.toBeNull();
    expect(await db('api_keys').where({ account_id: c.accountId, name: 'probe' })).toHaveLength(0);
    // "Where you are signed in" does not list it as a session.
    expect(await db('login_records').where({ user_id: c.userId })).toHaveLength(1);
  });

  it('expires after 10 minutes, and Cancel ends it', async () => {
    const { c, b } = await pendingUser();
    await db('customer_sessions').where({ user_id: c.userId, pending_second_factor: true }).update({ expires_at: new Date(Date.now() - 1000) });
    expect((await b.get('/app/login/second-factor')).location).toBe('/app/login');
    const late = await b.post('/app/login/second-factor', { _csrf: 'x', code: '123456' });
    expect(late.location).toBe('/app/login');

    const b2 = browser();
    await signIn(b2, c.email, PASSWORD);
    const form = await b2.get('/app/login/second-factor');
    const cancel = await b2.post('/app/logout', { _csrf: hidden(form.body, '_csrf') });
    expect(cancel.location).toBe('/app/login?msg=signed_out');
    expect(await db('customer_sessions').where({ user_id: c.userId, pending_second_factor: true }).whereNull('revoked_at').where('expires_at', '>', new Date())).toHaveLength(0);
  });

  it("refuses the second-factor form without the pending session's CSRF token", async () => {
    const { t, b } = await pendingUser();
    const r = await b.post('/app/login/second-factor', { _csrf: 'y'.repeat(32), code: t.app.next() });
    expect(r.status).toBe(403);
    expect((await b.get('/app')).location).toBe('/app/login');
  });

  it('the pending cookie opens nothing once promoted: the signed-in session has a new id', async () => {
    const { t, b } = await pendingUser();
    const pendingId = b.jar.get(SESSION_COOKIE)!;
    expect((await postSecondFactor(b, t.app.next())).location).toBe('/app');
    const thief = browser();
    thief.jar.set(SESSION_COOKIE, pendingId);
    expect((await thief.get('/app')).location).toBe('/app/login');
    expect((await thief.get('/app/login/second-factor')).location).toBe('/app/login');
  });
});

describe('codes', () => {
  it('a TOTP code works once: replayed on another sign-in it is refused', async () => {
    const { c, t, b } = await pendingUser();
    const code = t.app.next();
    expect((await postSecondFactor(b, code)).location).toBe('/app');
    const b2 = browser();
    await signIn(b2, c.email, PASSWORD);
    expect((await postSecondFactor(b2, code)).location).toBe('/app/login/second-factor?msg=second_factor_failed');
    // And the code that confirmed the set-up is spent too (every step up to the last accepted one is).
    expect((await postSecondFactor(b2, t.app.at(t.app.stepNow() - 1))).location).toBe('/app/login/second-factor?msg=second_factor_failed');
  });

  it('a recovery code works once', async () => {
    const { c, t, b } = await pendingUser();
    expect((await postSecondFactor(b, t.recoveryCodes[3]!)).location).toBe('/app');
    const b2 = browser();
    await signIn(b2, c.email, PASSWORD);
    expect((await postSecondFactor(b2, t.recoveryCodes[3]!)).location).toBe('/app/login/second-factor?msg=second_factor_failed');
    // Nor does another user's recovery code work for this user.
    const other = await pendingUser();
    expect((await postSecondFactor(b2, other.t.recoveryCodes[0]!)).location).toBe('/app/login/second-factor?msg=second_factor_failed');
  });

  it('wrong codes from many addresses are throttled per user: then even a right code is refused, and each failure is recorded without the code', async () => {
    const { c, t } = await pendingUser();
    const guesses = ['000000', '111111', '222222', '333333', '444444'];
    for (const g of guesses) {
      const b = browser();
      await signIn(b, c.email, PASSWORD);
      expect((await postSecondFactor(b, g)).location, g).toBe('/app/login/second-factor?msg=second_factor_failed');
    }
    const b = browser();
    await signIn(b, c.email, PASSWORD);
    const right = await postSecondFactor(b, t.app.next());
    expect(right.status).toBe(429);
    expect(right.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(right.body).toContain('Too many codes tried');
    expect((await b.get('/app')).location).toBe('/app/login');
    const events = await db('security_events').where({ kind: 'customer_second_factor_failed', account_id: c.accountId });
    expect(events.filter((e) => e.reason === 'wrong_totp_code')).toHaveLength(5);
    expect(events.filter((e) => e.reason === 'throttled')).toHaveLength(1);
    const text = JSON.stringify(events);
    for (const g of guesses) expect(text).not.toContain(g);
    expect(text).not.toContain(c.email);
    // A recovery code is refused while throttled too.
    expect((await postSecondFactor(b, t.recoveryCodes[0]!)).status).toBe(429);
    expect(await db('user_recovery_codes').where({ user_id: c.userId }).whereNotNull('used_at')).toHaveLength(0);
  });

  it('over-long and malformed codes are refused with the form message, never a stack trace', async () => {
    const { b } = await pendingUser();
    const long = await postSecondFactor(b, '1'.repeat(10_000));
    expect(long.location).toBe('/app/login/second-factor?msg=second_factor_failed');
    const weird = await postSecondFactor(b, '<script>alert(1)</script>');
    expect(weird.location).toBe('/app/login/second-factor?msg=second_factor_failed');
  });

  it("the security page's code actions are throttled with the same counter", async () => {
    const c = await customerWithPassword(db, config, PASSWORD);
    const owner = browser();
    await signIn(owner, c.email, PASSWORD);
    await enableTwoStep(owner);
    const csrf = hidden((await owner.get('/app/security')).body, '_csrf');
    for (let i = 0; i < 5; i++) expect((await owner.post('/app/security/two-step/disable', { _csrf: csrf, code: `99999${i}` })).location).toBe('/app/security?msg=two_step_code_failed');
    const sixth = await owner.post('/app/security/two-step/disable', { _csrf: csrf, password: PASSWORD });
    expect(sixth.location).toBe('/app/security?msg=second_factor_throttled');
    expect(await db('user_totp').where({ user_id: c.userId })).toHaveLength(1);
  });
});

describe('sign-in links', () => {
  it('work once, not after they expire, not for a removed or an erased user', async () => {
    const users = await Promise.all([1, 2, 3, 4].map(() => customerWithPassword(db, config, PASSWORD)));
    for (const u of users) await askForLink(browser(), u.email);
    const tokens = await eventually(
      () => {
        const t = users.map((u) => linkTokensTo(config, u.email)[0]);
        expect(t.every(Boolean)).toBe(true);
        return t as string[];
      },
      { timeoutMs: 10_000 },
    );
    const [once, expired, removed, erased] = tokens as [string, string, string, string];

    expect((await followLink(browser(), once)).location).toBe('/app');
    const replay = await followLink(browser(), once);
    expect(replay.status).toBe(400);
    expect(replay.setCookie.some((x) => x.startsWith(`${SESSION_COOKIE}=`) && !x.includes('Max-Age=0'))).toBe(false);

    await db('customer_login_links').where({ user_id: users[1]!.userId }).update({ expires_at: new Date(Date.now() - 1000) });
    expect((await followLink(browser(), expired)).status).toBe(400);

    await db('users').where({ id: users[2]!.userId }).update({ console_removed_at: new Date() });
    expect((await followLink(browser(), removed)).status).toBe(400);

    await db('users').where({ id: users[3]!.userId }).update({ erased_at: new Date() });
    expect((await followLink(browser(), erased)).status).toBe(400);

    expect(await db('login_records').whereIn('user_id', users.slice(1).map((u) => u.userId))).toHaveLength(0);
  });

  it('a removed user is sent no link; an unknown address gets the same answer; asking too often gets the same answer and no more mail', async () => {
    const c = await customerWithPassword(db, config, PASSWORD);
    const removed = await customerWithPassword(db, config, PASSWORD);
    await db('users').where({ id: removed.userId }).update({ console_removed_at: new Date() });
    const answers = [];
    for (let i = 0; i < 5; i++) answers.push(await askForLink(browser(), c.email));
    answers.push(await askForLink(browser(), removed.email));
    answers.push(await askForLink(browser(), `nobody-${randomUUID()}@example.com`));
    for (const a of answers) {
      expect(a.status).toBe(303);
      expect(a.location).toBe('/app/login?msg=signin_link_sent');
    }
    await eventually(() => expect(linkTokensTo(config, c.email)).toHaveLength(3), { timeoutMs: 10_000 });
    expect(await db('customer_login_links').where({ user_id: c.userId })).toHaveLength(3);
    expect(await db('customer_login_links').where({ user_id: removed.userId })).toHaveLength(0);
  });

  it('a mail scanner fetching the link (GET) does not spend it; forged or malformed tokens are refused without a lookup', async () => {
    const c = await customerWithPassword(db, config, PASSWORD);
    await askForLink(browser(), c.email);
    const token = await firstToken(c.email);
    for (let i = 0; i < 3; i++) expect((await browser().get(`/app/login/link?token=${token}`)).status).toBe(200);
    expect((await db('customer_login_links').where({ user_id: c.userId }).first()).used_at).toBeNull();
    expect((await browser().get('/app/login/link?token=short')).status).toBe(400);
    expect((await browser().get(`/app/login/link?token=${'A'.repeat(5000)}`)).status).toBe(400);
    const forged = await followLink(browser(), randomBytes(32).toString('base64url'));
    expect(forged.status).toBe(400);
    // Without the sign-in form's cookie, a cross-site POST is refused before the token is looked at.
    const csrfLess = await browser().post('/app/login/link', { _csrf: 'x', token });
    expect(csrfLess.status).toBe(403);
    expect((await db('customer_login_links').where({ user_id: c.userId }).first()).used_at).toBeNull();
    expect((await followLink(browser(), token)).location).toBe('/app');
  });

  it('never writes a token (or the link) to the logs, even when the email cannot be sent', async () => {
    const c = await customerWithPassword(db, config, PASSWORD);
    await askForLink(browser(), c.email);
    const token = await firstToken(c.email);
    await followLink(browser(), token);
    await followLink(browser(), token);

    // A mail server that refuses: the link is dropped (no usable token stays in the outbox) and the failure logged without it.
    const failing = testConfig({ TRUSTED_PROXIES: 'loopback', DATA_DIR: config.dataDir, SMTP_URL: 'smtp://127.0.0.1:9' });
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const app = createAdminApp({ db, billing: failing.billing, config: failing, clock: systemClock, logger: pino({ level: 'trace' }, sink), readiness: {}, readyCheckTimeoutMs: 1000 });
    const srv = await serve(app);
    try {
      const d = await customerWithPassword(db, config, PASSWORD);
      const b = makeBrowser(srv.url, { 'x-forwarded-for': '192.0.2.77' });
      expect((await askForLink(b, d.email)).location).toBe('/app/login?msg=signin_link_sent');
      await eventually(
        async () => {
          expect(lines.join('')).toContain('sign-in link email not sent');
          expect(await db('customer_login_links').where({ user_id: d.userId })).toHaveLength(0);
          expect(await db('notification_outbox').where({ recipient: d.email })).toHaveLength(0);
        },
        { timeoutMs: 15_000 },
      );
    } finally {
      await srv.close();
    }
    const all = [...logLines, ...lines].join('');
    expect(all).not.toContain(token);
    expect(all).not.toContain('/app/login/link?token=');
  });
});
