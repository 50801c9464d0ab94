import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminApp } from '../../src/admin/app';
import { systemClock } from '../../src/clock';
import { browser as makeBrowser, csrfOf, customerWithPassword, signedIn, signIn } from '../helpers/customerConsole';
import { silentLogger, testConfig, testDb } from '../helpers/env';
import { serve } from '../helpers/servers';

/**
 * Attacks on the customer console's API keys page (/app/keys): another
 * account's key or account id slipped into the form or the query, over-long
 * and out-of-range input, markup in a key's name, and the secret showing up
 * again after the page that created it.
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

async function member() {
  const c = await customerWithPassword(db, config, PASSWORD);
  await db('users').where({ id: c.userId }).update({ console_role: 'developer' });
  const b = browser();
  expect(signedIn(await signIn(b, c.email, PASSWORD))).toBe(true);
  return { ...c, b, csrf: await csrfOf(b) };
}

const secretOf = (body: string) => /<code id="new-key">([^<]+)<\/code>/.exec(body)?.[1] ?? '';
const noStack = (body: string) => expect(body).not.toMatch(/\n\s+at .+:\d+:\d+/);

describe('the keys page takes its account from the session only', () => {
  it("ignores another account's ids in the form, and refuses them in the query", async () => {
    const victim = await member();
    const created = await victim.b.post('/app/keys', { _csrf: victim.csrf, name: 'victim key' });
    expect(created.status).toBe(200);
    const [victimKey] = await db('api_keys').where({ account_id: victim.accountId });

    const attacker = await member();
    // Account or key ids in the create form: the key is the attacker's own account's, or nothing at all.
    const r = await attacker.b.post('/app/keys', { _csrf: attacker.csrf, name: 'planted', account_id: victim.accountId, accountId: victim.accountId, id: victimKey.id });
    expect([200, 400]).toContain(r.status);
    expect(await db('api_keys').where({ account_id: victim.accountId })).toHaveLength(1);
    // The victim's key id as the list cursor reveals nothing.
    const page = await attacker.b.get(`/app/keys?after=${victimKey.id}`);
    expect(page.status).toBe(400);
    expect(page.body).not.toContain('victim key');
    // The victim's key id in a change or revoke URL: not found, nothing changed.
    expect((await attacker.b.post(`/app/keys/${victimKey.id}`, { _csrf: attacker.csrf, name: 'owned', limit: '0.01' })).status).toBe(404);
    expect((await attacker.b.post(`/app/keys/${victimKey.id}/revoke`, { _csrf: attacker.csrf })).status).toBe(404);
    const after = await db('api_keys').where({ id: victimKey.id }).first();
    expect(after).toMatchObject({ name: 'victim key', spend_limit: null, revoked_at: null });
    // Not an id at all.
    const junk = await attacker.b.get(`/app/keys/${'x'.repeat(5000)}`);
    expect(junk.status).toBe(404);
    noStack(junk.body);
  });
});

describe('the keys forms refuse bad input with a message, and change nothing', () => {
  it('refuses over-long names and negative, fractional, huge or non-numeric limits', async () => {
    const m = await member();
    const cases: Record<string, string>[] = [
      { name: 'n'.repeat(201) },
      { name: 'n'.repeat(20_000) },
      { name: '   ' },
      { name: 'k', rate_limit_rpm: '-5' },
      { name: 'k', rate_limit_rpm: '0' },
      { name: 'k', rate_limit_rpm: '2.5' },
      { name: 'k', rate_limit_rpm: '1e400' },
      { name: 'k', rate_limit_rpm: '99999999999999999999' },
      { name: 'k', rate_limit_rpm: 'lots' },
      { name: 'k', limit: '-1' },
      { name: 'k', limit: '0' },
      { name: 'k', limit: '1e30' },
      { name: 'k', limit: '1000000000000' },
      { name: 'k', limit: '1.0000000000001' },
      { name: 'k', limit: 'NaN' },
      { name: 'k', limit_reset: 'hourly', limit: '5' },
      { name: 'k', limit_reset: 'daily' },
      { name: 'k', expires_at: '2001-01-01T00:00:00Z' },
      { name: 'k', expires_at: 'tomorrow' },
    ];
    for (const form of cases) {
      const r = await m.b.post('/app/keys', { _csrf: m.csrf, ...form });
      expect([400, 403], JSON.stringify(form).slice(0, 80)).toContain(r.status);
      expect(r.body).toContain('role="alert"');
      noStack(r.body);
    }
    expect(await db('api_keys').where({ account_id: m.accountId })).toHaveLength(0);

    const ok = await m.b.post('/app/keys', { _csrf: m.csrf, name: 'good', rate_limit_rpm: '60' });
    expect(ok.status).toBe(200);
    const [row] = await db('api_keys').where({ account_id: m.accountId });
    for (const form of cases) {
      const r = await m.b.post(`/app/keys/${row.id}`, { _csrf: m.csrf, name: 'good', ...form });
      expect(r.status, JSON.stringify(form).slice(0, 80)).toBe(400);
      noStack(r.body);
    }
    expect(await db('api_keys').where({ id: row.id }).first()).toMatchObject({ name: 'good', rate_limit_rpm: 60, spend_limit: null, limit_window: null, expires_at: null, kind: 'inference' });
  });

  it('makes an inference key whatever kind the form names (management keys are made by staff)', async () => {
    const m = await member();
    const r = await m.b.post('/app/keys', { _csrf: m.csrf, name: 'wants management', kind: 'management' });
    expect(r.status).toBe(200);
    const rows = await db('api_keys').where({ account_id: m.accountId });
    expect(rows.map((k) => k.kind)).toEqual(['inference']);
  });

  it("escapes markup in a key's name on every page", async () => {
    const m = await member();
    const evil = '<script>alert(1)</script><img src=x onerror=alert(2)>"\'';
    const r = await m.b.post('/app/keys', { _csrf: m.csrf, name: evil });
    expect(r.status).toBe(200);
    const [row] = await db('api_keys').where({ account_id: m.accountId });
    for (const body of [r.body, (await m.b.get('/app/keys')).body, (await m.b.get(`/app/keys/${row.id}`)).body]) {
      expect(body).not.toContain('<script>alert(1)');
      expect(body).not.toContain('<img src=x');
      expect(body).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    }
  });
});

describe('the secret is shown once', () => {
  it('never appears in a later page, a redirect, or the database in clear', async () => {
    const m = await member();
    const r = await m.b.post('/app/keys', { _csrf: m.csrf, name: 'once' });
    const secret = secretOf(r.body);
    expect(secret.length).toBeGreaterThan(20);
    expect(r.headers.get('cache-control')).toBe('no-store');
    expect(r.location).toBe('');
    const [row] = await db('api_keys').where({ account_id: m.accountId });
    const later = [
      await m.b.get('/app/keys'),
      await m.b.get(`/app/keys/${row.id}`),
      await m.b.get('/app'),
      await m.b.post(`/app/keys/${row.id}`, { _csrf: m.csrf, name: 'once renamed' }),
      await m.b.get('/app/keys?msg=keys_updated'),
      await m.b.post(`/app/keys/${row.id}/revoke`, { _csrf: m.csrf }),
      await m.b.get('/app/keys?msg=keys_revoked'),
    ];
    for (const p of later) {
      expect(p.body).not.toContain(secret);
      expect(p.location).not.toContain(secret);
    }
    // Only the hash and the display prefix are stored: no column of the key, the sessions or the security events holds it.
    const rows = await db('api_keys').where({ account_id: m.accountId });
    expect(JSON.stringify(rows)).not.toContain(secret);
    expect(secret.startsWith(rows[0].prefix)).toBe(true);
    expect(JSON.stringify(await db('customer_sessions').where({ user_id: m.userId }))).not.toContain(secret);
    const { rows: hits } = (await db.raw(`SELECT count(*)::int AS n FROM security_events WHERE row_to_json(security_events)::text LIKE ?`, [`%${secret}%`])) as { rows: { n: number }[] };
    expect(hits[0]!.n).toBe(0);
  });
});
