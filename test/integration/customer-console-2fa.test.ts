import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminApp } from '../../src/admin/app';
import { systemClock } from '../../src/clock';
import { collectSubjectData, emailHash, eraseSubject, findSubject } from '../../src/privacy/privacy.data';
import { browser as makeBrowser, csrfOf, customerWithPassword, SESSION_COOKIE, signedIn, signIn } from '../helpers/customerConsole';
import { enableTwoStep, postSecondFactor } from '../helpers/secondFactor';
import { silentLogger, testConfig, testDb } from '../helpers/env';
import { serve } from '../helpers/servers';

/**
 * Two-step sign-in in the customer console over HTTP (issue 26): setting it
 * up from /app/security (secret, otpauth:// URI, inline SVG QR code), signing
 * in with a TOTP code or a recovery code after the password, new recovery
 * codes, turning it off, and what the access answer shows of it.
 */
const config = testConfig({ TRUSTED_PROXIES: 'loopback', DATA_DIR: fs.mkdtempSync(path.join(os.tmpdir(), 'mixroute-2fa-')) });
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

const browser = () => makeBrowser(base, { 'x-forwarded-for': `203.0.113.${++lastOctet}` });

async function signedInUser() {
  const c = await customerWithPassword(db, config, PASSWORD);
  const b = browser();
  expect(signedIn(await signIn(b, c.email, PASSWORD))).toBe(true);
  return { c, b };
}

describe('setting up two-step sign-in', () => {
  it('shows the secret, the otpauth:// URI and an inline SVG QR code; the secret is stored sealed; confirming shows 10 recovery codes once, stored hashed', async () => {
    const { c, b } = await signedInUser();
    const before = await b.get('/app/security');
    expect(before.body).toContain('Two-step sign-in');
    expect(before.body).toContain('Set up two-step sign-in');

    const t = await enableTwoStep(b);
    expect(t.setupPage).toMatch(/<svg[^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    expect(t.setupPage).toContain(`otpauth://totp/MixRoute:${encodeURIComponent(c.email)}?`);
    expect(t.setupPage).toContain(`secret=${t.secret}`);
    expect(t.secret).toMatch(/^[A-Z2-7]{32}$/);

    const row = await db('user_totp').where({ user_id: c.userId }).first();
    expect(row.confirmed_at).not.toBeNull();
    expect(row.last_step).not.toBeNull();
    // Sealed: neither the base32 secret nor its bytes appear in the row.
    expect(JSON.stringify(row)).not.toContain(t.secret);
    expect(Buffer.from(row.ciphertext).toString('utf8')).not.toContain(t.secret);

    const codes = await db('user_recovery_codes').where({ user_id: c.userId });
    expect(codes).toHaveLength(10);
    expect(new Set(t.recoveryCodes).size).toBe(10);
    for (const rc of t.recoveryCodes) expect(JSON.stringify(codes)).not.toContain(rc.replace(/-/g, ''));
    expect(t.confirmPage).toContain('shown this once');

    const after = await b.get('/app/security');
    expect(after.body).toMatch(/On since \d{4}-\d\d-\d\dT/);
    expect(after.body).toContain('<strong id="recovery-left">10</strong>');
    // The secret is not shown again once confirmed.
    expect(after.body).not.toContain(t.secret);
    expect((await b.get('/app/security/two-step/setup')).location).toBe('/app/security');
  });

  it('refuses a wrong confirmation code: the factor stays off and sign-in asks for no code', async () => {
    const { c, b } = await signedInUser();
    const csrf = await csrfOf(b);
    await b.post('/app/security/two-step/setup', { _csrf: csrf });
    const r = await b.post('/app/security/two-step/confirm', { _csrf: csrf, code: '000000' });
    expect(r.status).toBe(303);
    expect(r.location).toBe('/app/security/two-step/setup?msg=two_step_setup_failed');
    expect((await db('user_totp').where({ user_id: c.userId }).first()).confirmed_at).toBeNull();
    expect(signedIn(await signIn(browser(), c.email, PASSWORD))).toBe(true);
  });
});

describe('signing in with two-step sign-in', () => {
  it('after the password: a pending session, then a TOTP code signs in with a new session id and a login record', async () => {
    const { c, b } = await signedInUser();
    const t = await enableTwoStep(b);
    const logins = (await db('login_records').where({ user_id: c.userId })).length;

    const b2 = browser();
    const r = await signIn(b2, c.email, PASSWORD);
    expect(r.status).toBe(303);
    expect(r.location).toBe('/app/login/second-factor');
    const pendingId = b2.jar.get(SESSION_COOKIE);
    expect(pendingId).toBeDefined();
    const pendingRow = await db('customer_sessions').where({ user_id: c.userId, pending_second_factor: true }).whereNull('revoked_at');
    expect(pendingRow).toHaveLength(1);
    expect((await db('login_records').where({ user_id: c.userId })).length).toBe(logins);

    const page = await b2.get('/app/login/second-factor');
    expect(page.status).toBe(200);
    expect(page.body).toContain('authenticator app');

    const ok = await postSecondFactor(b2, t.app.next());
    expect(ok.status).toBe(303);
    expect(ok.location).toBe('/app');
    expect(b2.jar.get(SESSION_COOKIE)).not.toBe(pendingId);
    expect((await b2.get('/app')).status).toBe(200);
    expect((await db('login_records').where({ user_id: c.userId })).length).toBe(logins + 1);
    expect((await db('customer_sessions').where({ id_hash: pendingRow[0].id_hash }).first()).revoked_at).not.toBeNull();
  });

  it('a recovery code signs in once, and the page counts it down', async () => {
    const { c, b } = await signedInUser();
    const t = await enableTwoStep(b);
    const b2 = browser();
    await signIn(b2, c.email, PASSWORD);
    // Typed as people do: upper case, spaces instead of dashes.
    const ok = await postSecondFactor(b2, t.recoveryCodes[0]!.toUpperCase().replace(/-/g, ' '));
    expect(ok.location).toBe('/app');
    expect((await b2.get('/app/security')).body).toContain('<strong id="recovery-left">9</strong>');
    expect(await db('user_recovery_codes').where({ user_id: c.userId }).whereNotNull('used_at')).toHaveLength(1);
  });

  it('new recovery codes (after a current code) replace the old ones', async () => {
    const { c, b } = await signedInUser();
    const t = await enableTwoStep(b);
    const csrf = await csrfOf(b);
    const wrong = await b.post('/app/security/two-step/recovery-codes', { _csrf: csrf, code: '123456' });
    expect(wrong.location).toBe('/app/security?msg=two_step_code_failed');
    const r = await b.post('/app/security/two-step/recovery-codes', { _csrf: csrf, code: t.app.next() });
    expect(r.status).toBe(200);
    const fresh = [...r.body.matchAll(/<li><code>([a-z2-9-]{23})<\/code><\/li>/g)].map((m) => m[1]!);
    expect(fresh).toHaveLength(10);
    expect(fresh).not.toContain(t.recoveryCodes[0]);
    const b2 = browser();
    await signIn(b2, c.email, PASSWORD);
    expect((await postSecondFactor(b2, t.recoveryCodes[0]!)).location).toBe('/app/login/second-factor?msg=second_factor_failed');
    expect((await postSecondFactor(b2, fresh[0]!)).location).toBe('/app');
  });

  it('turning it off needs a current code or the password; then sign-in asks for no code and the secret and codes are gone', async () => {
    const { c, b } = await signedInUser();
    await enableTwoStep(b);
    const csrf = await csrfOf(b);
    const refused = await b.post('/app/security/two-step/disable', { _csrf: csrf, password: 'not my password at all' });
    expect(refused.location).toBe('/app/security?msg=two_step_code_failed');
    expect(await db('user_totp').where({ user_id: c.userId })).toHaveLength(1);
    const off = await b.post('/app/security/two-step/disable', { _csrf: csrf, password: PASSWORD });
    expect(off.location).toBe('/app/security?msg=two_step_disabled');
    expect(await db('user_totp').where({ user_id: c.userId })).toHaveLength(0);
    expect(await db('user_recovery_codes').where({ user_id: c.userId })).toHaveLength(0);
    expect(signedIn(await signIn(browser(), c.email, PASSWORD))).toBe(true);
  });

  it('the access answer says since when it is on and how many recovery codes are left, never the secret or hashes; erasure deletes them', async () => {
    const { c, b } = await signedInUser();
    const t = await enableTwoStep(b);
    const subject = await findSubject(db, c.email, null);
    const data = await collectSubjectData(db, subject, emailHash(c.email), { portable: false });
    expect(data.two_step_sign_in).toEqual([{ user_id: c.userId, enabled_since: expect.stringMatching(/^\d{4}-/), unused_recovery_codes: 10 }]);
    const text = JSON.stringify(data);
    expect(text).not.toContain(t.secret);
    const hashes = await db('user_recovery_codes').where({ user_id: c.userId }).pluck('code_hash');
    for (const h of hashes) expect(text).not.toContain(h);

    const [req] = await db('dsr_requests')
      .insert({ type: 'deletion', channel: 'staff', subject_email_hash: emailHash(c.email), jurisdiction: 'gdpr', due_date: '2027-01-01', due_at: new Date(), extension_notice_by: new Date(), created_by: 'test' })
      .returning(['id']);
    const counts = await db.transaction((trx) => eraseSubject(trx, req.id, subject));
    expect(counts).toEqual(expect.arrayContaining([expect.objectContaining({ category: 'user_totp', rows: 1 }), expect.objectContaining({ category: 'user_recovery_codes', rows: 10 })]));
    expect(await db('user_totp').where({ user_id: c.userId })).toHaveLength(0);
    expect(await db('user_recovery_codes').where({ user_id: c.userId })).toHaveLength(0);
  });
});
