import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminApp } from '../../src/admin/app';
import { systemClock } from '../../src/clock';
import { staffService } from '../../src/staff/staff.service';
import { silentLogger, testConfig, testDb } from '../helpers/env';
import { serve } from '../helpers/servers';

/**
 * Attacks on the staff console's sessions and sign-in (issue 17, items 4 and
 * 10), over HTTP as a browser or a script would make them: a session that
 * outlives the revoked token or the changed role it was opened with, a
 * sign-in posted from another site, a password guessed from many addresses,
 * and a link that makes a console page say the attacker's words.
 */
// The admin server sits behind a proxy on loopback, so X-Forwarded-For names the client.
const config = testConfig({ TRUSTED_PROXIES: 'loopback' });
const db = testDb(config);
const PASSWORD = 'correct horse battery staple';
let base: string;
let close: () => Promise<void>;
let adminToken: string;

beforeAll(async () => {
  const app = createAdminApp({ db, billing: config.billing, config, clock: systemClock, logger: silentLogger, readiness: {}, readyCheckTimeoutMs: 1000 });
  ({ url: base, close } = await serve(app));
  adminToken = (await staffService({ db }).createStaffToken({ role: 'admin' })).token;
});
afterAll(async () => {
  await close();
  await db.destroy();
});

/** A browser's cookie jar over fetch, redirects not followed. */
function browser(headers: Record<string, string> = {}) {
  const jar = new Map<string, string>();
  const request = async (method: 'GET' | 'POST', path: string, form?: Record<string, string>) => {
    const res = await fetch(base + path, {
      method,
      redirect: 'manual',
      headers: {
        ...headers,
        ...(jar.size ? { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') } : {}),
        ...(form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
      },
      body: form ? new URLSearchParams(form).toString() : undefined,
    });
    for (const c of res.headers.getSetCookie()) {
      const [pair, ...attrs] = c.split(';');
      const [name, ...value] = pair!.split('=');
      if (attrs.some((a) => a.trim().toLowerCase() === 'max-age=0')) jar.delete(name!.trim());
      else jar.set(name!.trim(), value.join('='));
    }
    return { status: res.status, location: res.headers.get('location') ?? '', body: await res.text(), setCookie: res.headers.getSetCookie() };
  };
  return { jar, get: (path: string) => request('GET', path), post: (path: string, form: Record<string, string>) => request('POST', path, form) };
}
type Browser = ReturnType<typeof browser>;

const hidden = (html: string, name: string) => new RegExp(`name="${name}" value="([^"]*)"`).exec(html)?.[1] ?? '';

/** Opens the sign-in page and posts it, as a person at that browser does. */
async function signIn(b: Browser, email: string, password: string) {
  const form = await b.get('/console/login');
  return b.post('/console/login', { _csrf: hidden(form.body, '_csrf'), next: '/console', email, password });
}

async function staffUser(role: 'billing' | 'compliance' | 'admin') {
  const email = `staff-${randomUUID().slice(0, 8)}@mixroute.example`;
  const u = await staffService({ db }).createUser({ email, name: `Staff ${role}`, role, password: PASSWORD });
  return { ...u, email };
}

const signedInTo = (r: { status: number; location: string }) => r.status === 303 && r.location === '/console';

describe('console sessions follow the staff token or user behind them', () => {
  it('a session opened with a staff token ends when the token is revoked through the admin API', async () => {
    const stolen = await staffService({ db }).createStaffToken({ role: 'billing', name: 'laptop' });
    const attacker = browser();
    expect(signedInTo(await signIn(attacker, '', stolen.token))).toBe(true);
    expect((await attacker.get('/console/accounts')).status).toBe(200);

    const revoke = await fetch(`${base}/billing/staff-tokens/${stolen.id}/revoke`, { method: 'POST', headers: { authorization: `Bearer ${adminToken}` } });
    expect(revoke.status).toBe(200);

    const after = await attacker.get('/console/accounts');
    expect(after.status).toBe(303);
    expect(after.location).toMatch(/^\/console\/login/);
    const sessions = await db('console_sessions').where({ staff_token_id: stolen.id });
    expect(sessions.length).toBe(1);
    expect(sessions[0].revoked_at).not.toBeNull();
    // Nor can the old session act: a state-changing post goes to sign-in too.
    const act = await attacker.post('/console/retention/run', {});
    expect(act.status).toBe(303);
    expect(act.location).toMatch(/^\/console\/login/);
  });

  it("a demoted staff member's open session gets the new role at once; a disabled one's session ends", async () => {
    const target = await staffUser('admin');
    const other = await staffUser('admin');
    const demoted = browser();
    expect(signedInTo(await signIn(demoted, target.email, PASSWORD))).toBe(true);
    expect((await demoted.get('/console/staff')).status).toBe(200);

    const admin = browser();
    expect(signedInTo(await signIn(admin, other.email, PASSWORD))).toBe(true);
    const csrf = hidden((await admin.get('/console/staff')).body, '_csrf');
    const changed = await admin.post(`/console/staff/${target.id}/role`, { _csrf: csrf, role: 'billing' });
    expect(changed.status).toBe(303);
    expect((await db('staff_users').where({ id: target.id }).first('role')).role).toBe('billing');

    expect((await demoted.get('/console/staff')).status).toBe(403);
    expect((await demoted.get('/console/accounts')).status).toBe(200);

    const disabled = await admin.post(`/console/staff/${target.id}/disable`, { _csrf: csrf });
    expect(disabled.status).toBe(303);
    const open = await db('console_sessions').where({ staff_user_id: target.id }).whereNull('revoked_at').count('* as n').first();
    expect(Number(open?.n)).toBe(0);
    const after = await demoted.get('/console/accounts');
    expect(after.status).toBe(303);
    expect(after.location).toMatch(/^\/console\/login/);
    expect(signedInTo(await signIn(browser(), target.email, PASSWORD))).toBe(false);
  });
});

describe('console sign-in', () => {
  it('refuses a sign-in posted without the form token (login CSRF from another site)', async () => {
    const victimAccount = await staffUser('billing');
    // A page on another site posts the attacker's credentials into the victim's browser: no form token, no form cookie.
    const forged = await browser().post('/console/login', { email: victimAccount.email, password: PASSWORD, next: '/console' });
    expect(forged.status).toBe(403);
    expect(forged.setCookie.some((c) => c.startsWith('mr_console='))).toBe(false);
    // A token the attacker got from their own visit does not match the victim's cookie either.
    const attacker = browser();
    const token = hidden((await attacker.get('/console/login')).body, '_csrf');
    const victim = browser();
    await victim.get('/console/login');
    const replayed = await victim.post('/console/login', { _csrf: token, email: victimAccount.email, password: PASSWORD, next: '/console' });
    expect(replayed.status).toBe(403);
    expect(victim.jar.has('mr_console')).toBe(false);
  });

  it("throttles guesses at one account's password from many addresses", async () => {
    const target = await staffUser('admin');
    const bystander = await staffUser('billing');
    for (let i = 1; i <= 5; i++) {
      const r = await signIn(browser({ 'x-forwarded-for': `198.51.100.${i}` }), target.email, `guess number ${i}`);
      expect(r.status, `guess ${i}`).toBe(303);
      expect(r.location, `guess ${i}`).toMatch(/^\/console\/login\?/);
    }
    // The sixth try, from yet another address, is refused before the password is looked at, right or not.
    const sixth = await signIn(browser({ 'x-forwarded-for': '198.51.100.6' }), target.email, PASSWORD);
    expect(sixth.status).toBe(429);
    expect(sixth.setCookie.some((c) => c.startsWith('mr_console='))).toBe(false);
    // Case does not make it another account.
    expect((await signIn(browser({ 'x-forwarded-for': '198.51.100.7' }), target.email.toUpperCase(), PASSWORD)).status).toBe(429);
    // Another staff member at one of those addresses is not locked out.
    expect(signedInTo(await signIn(browser({ 'x-forwarded-for': '198.51.100.6' }), bystander.email, PASSWORD))).toBe(true);
  });

  it("shows only the console's own messages, never text from the link", async () => {
    const planted = 'Your account is locked: call +1 555 0100 with your password';
    for (const query of [
      `error=${encodeURIComponent(planted)}`,
      `ok=${encodeURIComponent(planted)}`,
      `msg=${encodeURIComponent(planted)}`,
      `msg=${encodeURIComponent('<script>alert(1)</script>')}`,
      'msg=__proto__',
      'msg=constructor',
    ]) {
      const page = await browser().get(`/console/login?${query}`);
      expect(page.status, query).toBe(200);
      expect(page.body, query).not.toContain('call +1 555 0100');
      expect(page.body, query).not.toContain('alert(1)');
      expect(page.body, query).not.toContain('class="flash');
    }
    expect((await browser().get('/console/login?msg=signin_failed')).body).toContain('Sign-in failed: check the email and password.');
  });
});
