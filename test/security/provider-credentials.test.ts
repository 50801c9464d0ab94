import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminApp } from '../../src/admin/app';
import { systemClock } from '../../src/clock';
import { silentLogger, testConfig, testDb } from '../helpers/env';
import { startFakeUpstream, type FakeUpstream } from '../helpers/fakeUpstream';
import { createCustomer, startTestGateway, UPSTREAM_KEY, UPSTREAM_KEY_ENV } from '../helpers/gateway';
import { serve } from '../helpers/servers';
import { staffService } from '../../src/staff/staff.service';

/**
 * Attack (issue 17, item 1): whoever may add a provider chooses its base URL and
 * the name of the environment variable the gateway sends as its bearer
 * credential. Named PAYMENT_WEBHOOK_SECRET, the gateway mailed the webhook
 * secret to the attacker's host. Now: only admins change providers, routes and
 * fallbacks; only PROVIDER_*_API_KEY variables are accepted; and the gateway
 * reads no other variable even when a database row names one.
 */
const SECRETS = {
  PAYMENT_WEBHOOK_SECRET: 'whsec_canary_5f1d0c2e',
  DSR_PACKAGE_KEY: 'dsr-key-canary-77a1',
  DATABASE_URL: 'postgres://mixroute:db-password-canary@db.internal:5432/mixroute',
  HOME: '/home/canary-home-dir',
};
const config = testConfig();
const db = testDb(config);
let admin: { url: string; close: () => Promise<void> };
let gw: Awaited<ReturnType<typeof startTestGateway>>;
let upstream: FakeUpstream;
const tokens = { billing: '', admin: '' };

beforeAll(async () => {
  admin = await serve(createAdminApp({ db, billing: config.billing, config, clock: systemClock, logger: silentLogger, readiness: {}, readyCheckTimeoutMs: 1000 }));
  tokens.billing = (await staffService({ db }).createStaffToken({ role: 'billing' })).token;
  tokens.admin = (await staffService({ db }).createStaffToken({ role: 'admin' })).token;
  upstream = await startFakeUpstream();
  // The gateway's environment holds the secrets, as a deployed one does.
  gw = await startTestGateway({}, config, SECRETS);
});
afterAll(async () => {
  await gw?.stop();
  await upstream?.close();
  await admin?.close();
  await db.destroy();
});

async function post(path: string, token: string, body: unknown) {
  const res = await fetch(admin.url + path, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, contentType: res.headers.get('content-type') ?? '', body: (await res.json()) as any };
}

const completion = (key: string, model: string) =>
  fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }], max_tokens: 8 }),
  });

describe('provider, route and fallback changes', () => {
  it('are refused to a billing token (403), while billing may still price an existing model', async () => {
    const c = await createCustomer(db, upstream.url);
    const attackerHost = 'https://collector.attacker.example/v1';

    const provider = await post('/billing/providers', tokens.billing, { name: `evil-${c.keyId.slice(0, 8)}`, baseUrl: attackerHost, apiKeyEnv: 'PROVIDER_EVIL_API_KEY' });
    expect(provider.status).toBe(403);
    expect(provider.contentType).toContain('application/problem+json');
    expect(await db('providers').where({ base_url: attackerHost }).first()).toBeUndefined();

    const route = await post('/billing/models', tokens.billing, { name: `new-${c.model}`, provider: c.provider, upstreamModel: 'fake-model', inputPerMtok: '1', outputPerMtok: '2' });
    expect(route.status).toBe(403);
    expect(await db('models').where({ public_name: `new-${c.model}` }).first()).toBeUndefined();

    const fallbacks = await post('/billing/models/fallbacks', tokens.billing, { name: c.model, routes: [{ provider: c.provider, upstreamModel: 'other-model' }] });
    expect(fallbacks.status).toBe(403);
    expect(await db('model_fallbacks').join('models', 'models.id', 'model_fallbacks.model_id').where('models.public_name', c.model).first()).toBeUndefined();

    const price = await post('/billing/models/prices', tokens.billing, { name: c.model, inputPerMtok: '3', outputPerMtok: '12', effectiveFrom: '2030-01-01T00:00:00Z' });
    expect(price.status).toBe(201);
    expect(price.body).toMatchObject({ name: c.model, provider: c.provider, upstreamModel: 'fake-model', price: { inputPerMtok: '3' } });
  });
});

describe('the credential variable', () => {
  it('must be a PROVIDER_*_API_KEY variable, even for an admin (400 problem)', async () => {
    for (const name of [...Object.keys(SECRETS), 'GATEWAY_INSTANCE_ID', 'PROVIDER_X', 'OPENAI_API_KEY']) {
      const providerName = `cred-${name.toLowerCase().replace(/_/g, '-')}`;
      const res = await post('/billing/providers', tokens.admin, { name: providerName, baseUrl: 'https://api.example.com/v1', apiKeyEnv: name });
      expect(res.status, name).toBe(400);
      expect(res.contentType).toContain('application/problem+json');
      expect(res.body.errors).toEqual([expect.objectContaining({ field: 'apiKeyEnv', message: expect.stringContaining('PROVIDER_<NAME>_API_KEY') })]);
      expect(await db('providers').where({ name: providerName }).first(), name).toBeUndefined();
    }
    const ok = await post('/billing/providers', tokens.admin, { name: 'cred-ok', baseUrl: 'https://api.example.com/v1', apiKeyEnv: 'PROVIDER_EXAMPLE_API_KEY' });
    expect(ok.status).toBe(201);
    const byName = await post('/billing/providers', tokens.admin, { name: 'cred-default.v2', baseUrl: 'https://api.example.com/v1' });
    expect(byName.body.apiKeyEnv).toBe('PROVIDER_CRED_DEFAULT_V2_API_KEY');
  });

  it('is never a variable of another form at the gateway, whatever a database row names', async () => {
    const c = await createCustomer(db, upstream.url);
    for (const name of Object.keys(SECRETS)) {
      // An old row, or one written straight into the database.
      await db('providers').where({ name: c.provider }).update({ api_key_env: name });
      await gw.routing.refresh();
      const before = upstream.requests.length;
      const res = await completion(c.key, c.model);
      await res.text();
      const sent = upstream.requests.slice(before);
      expect(sent.length, name).toBe(1);
      expect(sent[0]!.headers.authorization, name).toBeUndefined();
      for (const value of Object.values(SECRETS)) expect(JSON.stringify(sent[0]!.headers)).not.toContain(value);
    }
    // The documented form still reaches the provider.
    await db('providers').where({ name: c.provider }).update({ api_key_env: UPSTREAM_KEY_ENV });
    await gw.routing.refresh();
    const before = upstream.requests.length;
    expect((await completion(c.key, c.model)).status).toBe(200);
    expect(upstream.requests[before]!.headers.authorization).toBe(`Bearer ${UPSTREAM_KEY}`);
  });
});
