import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminApp } from '../../src/admin/app';
import { systemClock } from '../../src/clock';
import { staffService } from '../../src/staff/staff.service';
import { browser, csrfOf, customerWithPassword, signIn, signedIn, type Browser } from '../helpers/customerConsole';
import { silentLogger, testConfig, testDb } from '../helpers/env';
import { serve } from '../helpers/servers';
import { signedInStaff } from '../helpers/staffConsole';

/**
 * The trust boundaries of privacy policy versions (docs/customer-console.md#policy-changes):
 * only compliance staff and admins publish (not a customer, not billing
 * staff, not through the API with a billing token); a bad version string, an
 * oversized summary or title, a link that is not https are refused with a
 * message and nothing is published; what staff typed is escaped on the page;
 * a customer's acknowledgement needs the session's CSRF token and an existing
 * version. This file publishes no material version (the integration test's
 * notices must stay its own), so no workflow is needed.
 */
const config = testConfig();
const db = testDb(config);
const tag = randomUUID().slice(0, 8);
const PASSWORD = 'correct horse battery staple';
let base: string;
let close: () => Promise<void>;

beforeAll(async () => {
  const app = createAdminApp({ db, billing: config.billing, config, clock: systemClock, logger: silentLogger, readiness: {}, readyCheckTimeoutMs: 1000 });
  ({ url: base, close } = await serve(app));
});
afterAll(async () => {
  await close?.();
  await db.destroy();
});

const hidden = (html: string, name: string) => new RegExp(`name="${name}" value="([^"]*)"`).exec(html)?.[1] ?? '';
const published = async (version: string) => !!(await db('privacy_policy_versions').where({ version }).first());

async function customer(): Promise<{ b: Browser; userId: string }> {
  const c = await customerWithPassword(db, config, PASSWORD);
  await db('users').where({ id: c.userId }).update({ console_role: 'owner' });
  const b = browser(base);
  expect(signedIn(await signIn(b, c.email, PASSWORD))).toBe(true);
  return { b, userId: c.userId };
}

describe('publishing', () => {
  it('a signed-in customer cannot reach the staff page or post its form', async () => {
    const { b } = await customer();
    const csrf = await csrfOf(b);
    const version = `c${tag}`;
    const page = await b.get('/console/privacy-policy');
    expect(page.status).toBe(303);
    expect(page.location).toMatch(/^\/console\/login/);
    const post = await b.post('/console/privacy-policy', { _csrf: csrf, version, title: 'Mine', summary: 'Mine', material: '1' });
    expect(post.status).toBe(303);
    expect(post.location).toBe('/console/login');
    // Nor is there a publishing route under /app.
    expect((await b.post('/app/policy/publish', { _csrf: csrf, version, title: 'Mine', summary: 'Mine' })).status).toBe(404);
    expect(await published(version)).toBe(false);
  });

  it('billing staff cannot: the page is a 403 and the form is refused', async () => {
    const billing = await signedInStaff(db, base, 'billing');
    const page = await billing.get('/console/privacy-policy');
    expect(page.status).toBe(403);
    expect(page.body).toContain('compliance or admin');
    const csrf = hidden((await billing.get('/console/accounts')).body, '_csrf');
    expect(csrf).not.toBe('');
    const version = `b${tag}`;
    const post = await billing.request('POST', '/console/privacy-policy', { _csrf: csrf, version, title: 'Billing', summary: 'Billing' });
    expect(post.status).toBe(403);
    expect(await published(version)).toBe(false);
  });

  it('through the admin API, a billing token is refused and a bad body is a problem with the field named', async () => {
    const billingToken = (await staffService({ db }).createStaffToken({ role: 'billing' })).token;
    const complianceToken = (await staffService({ db }).createStaffToken({ role: 'compliance' })).token;
    const post = (token: string, body: unknown) =>
      fetch(`${base}/privacy/policy-versions`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const version = `a${tag}`;
    expect((await post(billingToken, { version, title: 'T', summary: 'S' })).status).toBe(403);
    const bad = await post(complianceToken, { version: '../etc', title: 'T', summary: 'S', url: 'http://x.example' });
    expect(bad.status).toBe(400);
    expect(bad.headers.get('content-type')).toContain('application/problem+json');
    const problem = (await bad.json()) as { detail?: string };
    expect(problem.detail).toMatch(/version must be/);
    expect(problem.detail).toMatch(/https/);
    expect(await published(version)).toBe(false);
    expect(await published('../etc')).toBe(false);
  });

  it('bad values are refused with a clear message and nothing is published', async () => {
    const staff = await signedInStaff(db, base, 'compliance');
    const csrf = hidden((await staff.get('/console/privacy-policy')).body, '_csrf');
    const cases: [Record<string, string>, RegExp][] = [
      [{ version: 'v 1', title: 'T', summary: 'S' }, /version must be 1-40 letters/],
      [{ version: `x${tag}/../1`, title: 'T', summary: 'S' }, /version must be 1-40 letters/],
      [{ version: 'V'.repeat(41), title: 'T', summary: 'S' }, /version must be 1-40 letters/],
      [{ version: `s${tag}`, title: 'T', summary: 'x'.repeat(4001) }, /summary must be at most 4000 characters/],
      [{ version: `t${tag}`, title: 'x'.repeat(201), summary: 'S' }, /title must be at most 200 characters/],
      [{ version: `n${tag}`, title: 'Line\nbreak', summary: 'S' }, /title must be one line/],
      [{ version: `e${tag}`, title: 'T', summary: 'a\u001b[2Jb' }, /summary must be text without control characters/],
      [{ version: `h${tag}`, title: 'T', summary: 'S', url: 'http://mixroute.example/privacy' }, /url must be an https:\/\/ address/],
      [{ version: `j${tag}`, title: 'T', summary: 'S', url: 'javascript:alert(1)' }, /url must be an https:\/\/ address/],
      [{ version: `u${tag}`, title: 'T', summary: 'S', url: 'https://user:pw@evil.example/' }, /user name or password/],
      [{ version: `l${tag}`, title: 'T', summary: 'S', url: `https://a.example/${'x'.repeat(600)}` }, /url must be at most 500 characters/],
      [{ version: `m${tag}`, title: '', summary: 'S' }, /title must be at least 1 characters/],
    ];
    for (const [form, message] of cases) {
      const r = await staff.request('POST', '/console/privacy-policy', { _csrf: csrf, ...form });
      expect(r.status, JSON.stringify(form).slice(0, 80)).toBe(400);
      expect(r.body).toMatch(message);
      expect(r.body).not.toMatch(/at .*\.ts:\d+/);
      expect(await published(form.version!)).toBe(false);
    }
    // Without the CSRF token nothing is published either.
    const version = `f${tag}`;
    expect((await staff.request('POST', '/console/privacy-policy', { version, title: 'T', summary: 'S' })).status).toBe(403);
    expect(await published(version)).toBe(false);
  });

  it('what staff typed is escaped on the page; a version is never published twice', async () => {
    const staff = await signedInStaff(db, base, 'admin');
    const csrf = hidden((await staff.get('/console/privacy-policy')).body, '_csrf');
    const version = `x${tag}`;
    const form = { _csrf: csrf, version, title: `<script>alert(1)</script> ${tag}`, summary: '<img src=x onerror=alert(1)>', url: 'https://mixroute.example/p"onmouseover="alert(1)' };
    const first = await staff.request('POST', '/console/privacy-policy', form);
    expect(first.status).toBe(303);
    const page = await staff.get('/console/privacy-policy');
    expect(page.body).not.toContain('<script>alert(1)</script>');
    expect(page.body).toContain(`&lt;script&gt;alert(1)&lt;/script&gt; ${tag}`);
    expect(page.body).not.toContain('"onmouseover="');
    const again = await staff.request('POST', '/console/privacy-policy', { ...form, title: 'Replaced' });
    expect(again.status).toBe(409);
    expect(again.body).toContain('already published');
    expect((await db('privacy_policy_versions').where({ version }).first()).title).toBe(form.title);
  });
});

describe('acknowledging', () => {
  it('needs the session and its CSRF token', async () => {
    const { b, userId } = await customer();
    const staff = await signedInStaff(db, base, 'compliance');
    const version = `k${tag}`;
    expect((await staff.request('POST', '/console/privacy-policy', { _csrf: hidden((await staff.get('/console/privacy-policy')).body, '_csrf'), version, title: 'Minor', summary: 'S' })).status).toBe(303);

    expect((await b.post('/app/policy/acknowledge', { version })).status).toBe(403);
    expect((await b.post('/app/policy/acknowledge', { version, _csrf: 'not-the-token' })).status).toBe(403);
    // Another user's token is not this session's.
    const other = await customer();
    expect((await b.post('/app/policy/acknowledge', { version, _csrf: await csrfOf(other.b) })).status).toBe(403);
    // Signed out: to the sign-in page.
    const anonymous = browser(base);
    const r = await anonymous.post('/app/policy/acknowledge', { version });
    expect([303, 403]).toContain(r.status);
    expect(await db('policy_acknowledgements').where({ user_id: userId })).toHaveLength(0);

    // With it, recorded once; the return path cannot leave the console.
    const ok = await b.post('/app/policy/acknowledge', { version, _csrf: await csrfOf(b), back: '//evil.example/x' });
    expect(ok.status).toBe(303);
    expect(ok.location).toBe('/app?msg=policy_acknowledged');
    expect(await db('policy_acknowledgements').where({ user_id: userId, version })).toHaveLength(1);
  });

  it('an unknown or malformed version is refused with a message and nothing is recorded', async () => {
    const { b, userId } = await customer();
    const csrf = await csrfOf(b);
    const unknown = await b.post('/app/policy/acknowledge', { _csrf: csrf, version: `nope-${tag}` });
    expect(unknown.status).toBe(404);
    expect(unknown.body).toContain(`privacy policy version nope-${tag} does not exist`);
    for (const version of ['', "1' OR '1'='1", 'x'.repeat(5000)]) {
      const bad = await b.post('/app/policy/acknowledge', { _csrf: csrf, version });
      expect(bad.status).toBe(400);
      expect(bad.body).toContain('not a privacy policy version');
    }
    expect(await db('policy_acknowledgements').where({ user_id: userId })).toHaveLength(0);
  });
});
