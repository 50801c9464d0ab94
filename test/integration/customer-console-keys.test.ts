import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminApp } from '../../src/admin/app';
import { hashSecret } from '../../src/auth/secrets';
import { systemClock } from '../../src/clock';
import { browser as makeBrowser, csrfOf, customerWithPassword, signedIn, signIn, type Browser } from '../helpers/customerConsole';
import { silentLogger, testConfig, testDb } from '../helpers/env';
import { startTestGateway } from '../helpers/gateway';
import { serve } from '../helpers/servers';

/**
 * The customer console's API keys page (/app/keys, issue 26): list, create (the
 * secret shown once and working at the gateway), change limits, rename, revoke;
 * roles, CSRF, and one account's member never reaching another's keys.
 */
const config = testConfig({ TRUSTED_PROXIES: 'loopback' });
const db = testDb(config);
const PASSWORD = 'correct horse battery staple';
let base: string;
let close: () => Promise<void>;
let gw: Awaited<ReturnType<typeof startTestGateway>>;
let lastOctet = 0;

beforeAll(async () => {
  const app = createAdminApp({ db, billing: config.billing, config, clock: systemClock, logger: silentLogger, readiness: {}, readyCheckTimeoutMs: 1000 });
  ({ url: base, close } = await serve(app));
  gw = await startTestGateway();
});
afterAll(async () => {
  await gw?.stop();
  await close();
  await db.destroy();
});

const browser = () => makeBrowser(base, { 'x-forwarded-for': `203.0.113.${++lastOctet}` });

async function member(role: 'owner' | 'admin' | 'developer' | 'billing' = 'developer') {
  const c = await customerWithPassword(db, config, PASSWORD);
  await db('users').where({ id: c.userId }).update({ console_role: role });
  const b = browser();
  expect(signedIn(await signIn(b, c.email, PASSWORD))).toBe(true);
  return { ...c, b, csrf: await csrfOf(b) };
}

const secretOf = (body: string) => /<code id="new-key">([^<]+)<\/code>/.exec(body)?.[1] ?? '';

async function createKey(m: { b: Browser; csrf: string }, form: Record<string, string> = {}) {
  const r = await m.b.post('/app/keys', { _csrf: m.csrf, name: 'ci key', ...form });
  expect(r.status, r.body).toBe(200);
  return { res: r, secret: secretOf(r.body) };
}

describe('the API keys page', () => {
  it('creates a key: the secret is shown once (no-store, not in a URL), only its hash is stored, and it works at the gateway', async () => {
    const m = await member('developer');
    const page = await m.b.get('/app/keys');
    expect(page.status).toBe(200);
    expect(page.body).toContain('href="/app/keys"');
    const { res, secret } = await createKey(m, { name: 'prod server', rate_limit_rpm: '120', limit: '25.00', limit_reset: 'monthly' });
    expect(secret).not.toBe('');
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.location).toBe('');
    const rows = await db('api_keys').where({ account_id: m.accountId });
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ name: 'prod server', kind: 'inference', rate_limit_rpm: 120, limit_window: 'monthly', key_hash: hashSecret(secret) });
    expect(Number(rows[0].spend_limit)).toBe(25);
    expect(JSON.stringify(rows)).not.toContain(secret);

    const me = await fetch(`${gw.url}/v1/key`, { headers: { authorization: `Bearer ${secret}` } });
    expect(me.status).toBe(200);
    expect(((await me.json()) as { data: { id: string } }).data.id).toBe(rows[0].id);

    const list = await m.b.get('/app/keys');
    expect(list.body).toContain('prod server');
    expect(list.body).toContain(rows[0].prefix);
    expect(list.body).toContain('120');
    expect(list.body).toContain('monthly');
    expect(list.body).not.toContain(secret);
  });

  it('changes name and limits, and shows a service error without changing anything', async () => {
    const m = await member('admin');
    await createKey(m);
    const [row] = await db('api_keys').where({ account_id: m.accountId });
    const ok = await m.b.post(`/app/keys/${row.id}`, { _csrf: m.csrf, name: 'renamed', rate_limit_rpm: '30', limit: '5', limit_reset: 'daily', expires_at: '' });
    expect(ok.status).toBe(303);
    expect(ok.location).toBe('/app/keys?msg=keys_updated');
    expect((await m.b.get(ok.location)).body).toContain('The key was changed.');
    const after = await db('api_keys').where({ id: row.id }).first();
    expect(after).toMatchObject({ name: 'renamed', rate_limit_rpm: 30, limit_window: 'daily' });
    expect(Number(after.spend_limit)).toBe(5);

    // A window without a limit is refused by the key service: a message, no stack, nothing changed.
    const bad = await m.b.post(`/app/keys/${row.id}`, { _csrf: m.csrf, name: 'other name', rate_limit_rpm: '30', limit: '', limit_reset: 'weekly', expires_at: '' });
    expect(bad.status).toBe(400);
    expect(bad.body).toContain('limit');
    expect(bad.body).not.toMatch(/at .*\.ts:\d+/);
    expect(await db('api_keys').where({ id: row.id }).first()).toMatchObject({ name: 'renamed', limit_window: 'daily' });
  });

  it('revokes a key with a POST from its page, and the gateway refuses it from then on', async () => {
    const m = await member('owner');
    const { secret } = await createKey(m);
    const [row] = await db('api_keys').where({ account_id: m.accountId });
    const detail = await m.b.get(`/app/keys/${row.id}`);
    expect(detail.status).toBe(200);
    expect(detail.body).toContain(`action="/app/keys/${row.id}/revoke"`);
    const r = await m.b.post(`/app/keys/${row.id}/revoke`, { _csrf: m.csrf });
    expect(r.location).toBe('/app/keys?msg=keys_revoked');
    expect((await db('api_keys').where({ id: row.id }).first()).revoked_at).not.toBeNull();
    const page = await m.b.get('/app/keys');
    expect(page.body).not.toContain(`href="/app/keys/${row.id}"`);
    // A revoked key cannot be changed.
    const change = await m.b.post(`/app/keys/${row.id}`, { _csrf: m.csrf, name: 'again' });
    expect(change.status).toBe(409);
    const refused = await fetch(`${gw.url}/v1/key`, { headers: { authorization: `Bearer ${secret}` } });
    expect(refused.status).toBe(401);
  });

  it('refuses a billing member on GET and every POST (403), and creates nothing', async () => {
    const owner = await member('owner');
    await createKey(owner);
    const [row] = await db('api_keys').where({ account_id: owner.accountId });
    const m = await member('billing');
    // The billing member is in another account; put them in the owner's.
    await db('users').where({ id: m.userId }).update({ account_id: owner.accountId });
    await db('customer_sessions').where({ user_id: m.userId }).update({ account_id: owner.accountId });
    expect((await m.b.get('/app/keys')).status).toBe(403);
    expect((await m.b.get(`/app/keys/${row.id}`)).status).toBe(403);
    expect((await m.b.post('/app/keys', { _csrf: m.csrf, name: 'nope' })).status).toBe(403);
    expect((await m.b.post(`/app/keys/${row.id}`, { _csrf: m.csrf, name: 'nope' })).status).toBe(403);
    expect((await m.b.post(`/app/keys/${row.id}/revoke`, { _csrf: m.csrf })).status).toBe(403);
    expect((await m.b.get('/app')).body).not.toContain('href="/app/keys"');
    const rows = await db('api_keys').where({ account_id: owner.accountId });
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ name: 'ci key', revoked_at: null });
  });

  it("does not let a member of another account see, change or revoke this account's key", async () => {
    const a = await member('owner');
    await createKey(a, { name: 'a secret project' });
    const [row] = await db('api_keys').where({ account_id: a.accountId });
    const other = await member('owner');
    expect((await other.b.get('/app/keys')).body).not.toContain('a secret project');
    expect((await other.b.get(`/app/keys/${row.id}`)).status).toBe(404);
    expect((await other.b.post(`/app/keys/${row.id}`, { _csrf: other.csrf, name: 'taken' })).status).toBe(404);
    expect((await other.b.post(`/app/keys/${row.id}/revoke`, { _csrf: other.csrf })).status).toBe(404);
    expect(await db('api_keys').where({ id: row.id }).first()).toMatchObject({ name: 'a secret project', revoked_at: null });
  });

  it('refuses a POST without the CSRF token (403), and nothing is created or revoked', async () => {
    const m = await member('developer');
    await createKey(m);
    const [row] = await db('api_keys').where({ account_id: m.accountId });
    expect((await m.b.post('/app/keys', { name: 'no token' })).status).toBe(403);
    expect((await m.b.post(`/app/keys/${row.id}/revoke`, {})).status).toBe(403);
    expect((await m.b.post(`/app/keys/${row.id}`, { _csrf: 'x'.repeat(32), name: 'wrong token' })).status).toBe(403);
    const rows = await db('api_keys').where({ account_id: m.accountId });
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ name: 'ci key', revoked_at: null });
  });
});
