import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accountsService } from '../../src/accounts/accounts.service';
import { KEY_OBJECT_FIELDS } from '../../src/accounts/keys.schemas';
import { createAdminApp } from '../../src/admin/app';
import { systemClock } from '../../src/clock';
import { staffService } from '../../src/staff/staff.service';
import { runCli, runCliJson } from '../helpers/cli';
import { serve } from '../helpers/servers';
import { eventually } from '../helpers/eventually';
import { silentLogger, testConfig, testDb, testEnv } from '../helpers/env';
import { startFakeUpstream, type FakeUpstream } from '../helpers/fakeUpstream';
import { createCustomer, startTestGateway, UPSTREAM_KEY, type Customer } from '../helpers/gateway';

/**
 * Management keys over HTTP against a real gateway: every account endpoint with
 * a management key, an inference key and another account's key; expiry; and
 * management keys kept out of model calls (refused, and metered like any refusal).
 */
const config = testConfig();
const db = testDb(config);
const ops = accountsService({ db, clock: systemClock });
let upstream: FakeUpstream;
let gw: Awaited<ReturnType<typeof startTestGateway>>;
let a: Customer;
let b: Customer;
let aManagement: { key: string; id: string };
let bManagement: { key: string; id: string };

beforeAll(async () => {
  upstream = await startFakeUpstream({ apiKey: UPSTREAM_KEY });
  upstream.setDefault({ kind: 'ok', completionTokens: 2, promptTokens: 5 });
  a = await createCustomer(db, upstream.url);
  b = await createCustomer(db, upstream.url);
  const am = await ops.createKey({ accountId: a.accountId, name: 'ops automation', kind: 'management' });
  const bm = await ops.createKey({ accountId: b.accountId, name: 'ops automation', kind: 'management' });
  aManagement = { key: am.key, id: am.id };
  bManagement = { key: bm.key, id: bm.id };
  gw = await startTestGateway({}, config);
});
afterAll(async () => {
  await gw?.stop();
  await upstream?.close();
  await db.destroy();
});

async function call(method: string, path: string, key: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${gw.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  let json: any = null;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, body: json, requestId: res.headers.get('x-request-id'), cacheControl: res.headers.get('cache-control') };
}

/** A year from now: a valid expiry whatever the date the tests run on. */
const NEXT_YEAR = new Date(Date.now() + 365 * 86_400_000);
NEXT_YEAR.setUTCHours(0, 0, 0, 0);

const chat = (key: string, model: string) =>
  call('POST', '/v1/chat/completions', key, { model, max_tokens: 2, messages: [{ role: 'user', content: 'hi' }] });

describe('management keys: every account endpoint with each kind of key', () => {
  it('answers a management key, an inference key and another account key as each may see', async () => {
    // A request of A's inference key, for /v1/generation.
    const answered = await chat(a.key, a.model);
    expect(answered.status).toBe(200);
    const requestId = answered.requestId!;
    await eventually(async () => expect(await db('usage_events').where({ request_id: requestId }).first()).toBeTruthy(), {
      timeoutMs: 10_000,
      message: "A's request to be on file",
    });
    // A second inference key of A: sees only its own requests.
    const a2 = await ops.createKey({ accountId: a.accountId, name: 'second' });
    // Keys of A to change and revoke.
    const victim1 = await ops.createKey({ accountId: a.accountId, name: 'to revoke by management' });
    const victim2 = await ops.createKey({ accountId: a.accountId, name: 'to revoke by others' });

    const callers = { management: aManagement.key, inference: a.key, otherAccount: bManagement.key } as const;
    type Who = keyof typeof callers;
    const walk: { method: string; path: string; body?: unknown; expect: Record<Who, number> }[] = [
      { method: 'POST', path: '/v1/keys', body: { name: 'made by API' }, expect: { management: 201, inference: 403, otherAccount: 201 } },
      { method: 'GET', path: '/v1/keys', expect: { management: 200, inference: 403, otherAccount: 200 } },
      { method: 'GET', path: `/v1/keys/${a.keyId}`, expect: { management: 200, inference: 403, otherAccount: 404 } },
      { method: 'PATCH', path: `/v1/keys/${a.keyId}`, body: { name: 'renamed' }, expect: { management: 200, inference: 403, otherAccount: 404 } },
      { method: 'PATCH', path: `/v1/keys/${aManagement.id}`, body: { name: 'renamed' }, expect: { management: 403, inference: 403, otherAccount: 404 } },
      { method: 'DELETE', path: `/v1/keys/${aManagement.id}`, expect: { management: 403, inference: 403, otherAccount: 404 } },
      { method: 'GET', path: '/v1/key', expect: { management: 200, inference: 200, otherAccount: 200 } },
      { method: 'GET', path: '/v1/credits', expect: { management: 200, inference: 200, otherAccount: 200 } },
      { method: 'GET', path: `/v1/generation?id=${requestId}`, expect: { management: 200, inference: 200, otherAccount: 404 } },
      { method: 'GET', path: '/v1/activity', expect: { management: 200, inference: 200, otherAccount: 200 } },
      { method: 'GET', path: '/v1/models', expect: { management: 200, inference: 200, otherAccount: 200 } },
    ];
    const got: string[] = [];
    const want: string[] = [];
    for (const step of walk) {
      for (const who of ['inference', 'otherAccount', 'management'] as Who[]) {
        const r = await call(step.method, step.path, callers[who], step.body);
        got.push(`${step.method} ${step.path} as ${who}: ${r.status}`);
        want.push(`${step.method} ${step.path} as ${who}: ${step.expect[who]}`);
        if (r.status >= 400) {
          // Every refusal in OpenAI's shape with a code.
          expect(r.body).toMatchObject({ error: { message: expect.any(String), type: expect.any(String), code: expect.any(String) } });
        }
      }
    }
    expect(got).toEqual(want);

    // Revocation: each caller tries its own victim last, so one's success cannot hide another's refusal.
    expect((await call('DELETE', `/v1/keys/${victim2.id}`, a.key)).status).toBe(403);
    expect((await call('DELETE', `/v1/keys/${victim2.id}`, bManagement.key)).status).toBe(404);
    expect((await db('api_keys').where({ id: victim2.id }).first()).revoked_at).toBeNull();
    const revoked = await call('DELETE', `/v1/keys/${victim1.id}`, aManagement.key);
    expect(revoked.status).toBe(200);
    expect(revoked.body).toMatchObject({ deleted: true, data: { id: victim1.id, disabled: true } });

    // The second inference key of A cannot read the first one's request.
    expect((await call('GET', `/v1/generation?id=${requestId}`, a2.key)).status).toBe(404);

    // B's management key created its key in B, and A's list holds none of B's keys.
    const bKeys = await db('api_keys').where({ account_id: b.accountId, name: 'made by API' });
    expect(bKeys).toHaveLength(1);
    const aList = await call('GET', '/v1/keys', aManagement.key);
    const ids = (aList.body.data as { id: string }[]).map((k) => k.id);
    expect(ids).toEqual(expect.arrayContaining([a.keyId, a2.id, aManagement.id, victim1.id]));
    expect(ids).not.toContain(bKeys[0].id);
    expect(ids).not.toContain(b.keyId);
  });

  it('creates a key whose secret is shown once and works for model calls, then lists, changes and revokes it', async () => {
    const created = await call('POST', '/v1/keys', aManagement.key, {
      name: 'ci runner',
      limit: '25.50',
      limit_reset: 'monthly',
      rate_limit_rpm: 120,
      expires_at: NEXT_YEAR.toISOString().replace('.000Z', 'Z'),
      limit_alert_percents: [100, 50],
    });
    expect(created.status).toBe(201);
    expect(created.cacheControl).toBe('no-store');
    expect(created.body).toMatchObject({
      key: expect.stringMatching(/^\S+$/),
      data: {
        name: 'ci runner',
        kind: 'inference',
        disabled: false,
        limit: '25.5',
        limit_reset: 'monthly',
        rate_limit_rpm: 120,
        expires_at: NEXT_YEAR.toISOString(),
        limit_alert_percents: [50, 100],
      },
    });
    const { key, data } = created.body as { key: string; data: { id: string; prefix: string } };
    expect(key.startsWith(data.prefix.replace(/[.…]+$/, ''))).toBe(true);
    // The secret is nowhere else: not in the key's own page, not in the list, not in the database.
    const one = await call('GET', `/v1/keys/${data.id}`, aManagement.key);
    expect(JSON.stringify(one.body)).not.toContain(key);
    const row = await db('api_keys').where({ id: data.id }).first();
    expect(JSON.stringify(row)).not.toContain(key);

    expect((await chat(key, a.model)).status).toBe(200);

    const changed = await call('PATCH', `/v1/keys/${data.id}`, aManagement.key, { name: 'ci', limit: 10, limit_reset: null, expires_at: null });
    expect(changed.status).toBe(200);
    expect(changed.body.data).toMatchObject({ name: 'ci', limit: '10', limit_reset: null, expires_at: null, rate_limit_rpm: 120 });

    const disabled = await call('PATCH', `/v1/keys/${data.id}`, aManagement.key, { disabled: true });
    expect(disabled.body.data).toMatchObject({ disabled: true, revoked_at: expect.any(String) });
    // Revocation reaches the gateway within the key cache's 5 s.
    await eventually(async () => expect((await chat(key, a.model)).status).toBe(401), { timeoutMs: 10_000, message: 'the revoked key to be refused' });
    expect((await call('PATCH', `/v1/keys/${data.id}`, aManagement.key, { disabled: false })).status).toBe(400);
    expect((await call('PATCH', `/v1/keys/${data.id}`, aManagement.key, { name: 'again' })).status).toBe(409);
    // DELETE of a revoked key is idempotent: the first revocation time stays.
    const again = await call('DELETE', `/v1/keys/${data.id}`, aManagement.key);
    expect(again.status).toBe(200);
    expect(again.body.data.revoked_at).toBe(disabled.body.data.revoked_at);
  });

  it('is described by the OpenAPI document, field for field', async () => {
    const doc = (await (await fetch(`${gw.url}/v1/openapi.json`)).json()) as { paths: Record<string, Record<string, any>> };
    expect(Object.keys(doc.paths['/v1/keys']!).sort()).toEqual(['get', 'post']);
    expect(Object.keys(doc.paths['/v1/keys/{id}']!).sort()).toEqual(['delete', 'get', 'patch']);
    const created = await call('POST', '/v1/keys', aManagement.key, { name: 'documented' });
    const documented = doc.paths['/v1/keys']!.post.responses['201'].content['application/json'].schema.properties;
    expect(Object.keys(documented.data.properties).sort()).toEqual(Object.keys(created.body.data).sort());
    expect(Object.keys(documented).sort()).toEqual(Object.keys(created.body).sort());
    expect(KEY_OBJECT_FIELDS.map((f) => f.name).sort()).toEqual(Object.keys(created.body.data).sort());
  });

  it('describes /v1/alerts and /v1/webhooks field for field as they answer', async () => {
    const doc = (await (await fetch(`${gw.url}/v1/openapi.json`)).json()) as { paths: Record<string, Record<string, any>> };
    const schemaOf = (path: string, method: string, status = '200') => doc.paths[path]![method].responses[status].content['application/json'].schema.properties;
    expect(Object.keys(doc.paths['/v1/alerts']!).sort()).toEqual(['get', 'patch']);
    const alerts = await call('GET', '/v1/alerts', bManagement.key);
    expect(Object.keys(schemaOf('/v1/alerts', 'get').data.properties).sort()).toEqual(Object.keys(alerts.body.data).sort());

    const registered = await call('POST', '/v1/webhooks', bManagement.key, { url: 'https://hooks.example.com/mixroute', events: ['balance.low'] });
    expect(registered.status).toBe(201);
    const documented = schemaOf('/v1/webhooks', 'post', '201');
    expect(Object.keys(documented).sort()).toEqual(Object.keys(registered.body).sort());
    expect(Object.keys(documented.data.properties).sort()).toEqual(Object.keys(registered.body.data).sort());
    expect(documented.data.properties.events).toMatchObject({ type: 'array', items: { type: 'string' } });
    const listed = await call('GET', '/v1/webhooks', bManagement.key);
    expect(Object.keys(schemaOf('/v1/webhooks', 'get')).sort()).toEqual(Object.keys(listed.body).sort());
    const deliveries = await call('GET', '/v1/webhooks/deliveries', bManagement.key);
    expect(deliveries.status).toBe(200);
    expect(Object.keys(schemaOf('/v1/webhooks/deliveries', 'get')).sort()).toEqual(Object.keys(deliveries.body).sort());
    for (const path of ['/v1/webhooks/{id}', '/v1/webhooks/{id}/disable', '/v1/webhooks/{id}/enable', '/v1/webhooks/deliveries/{id}', '/v1/webhooks/deliveries/{id}/redeliver']) {
      expect(doc.paths[path], path).toBeDefined();
    }
    expect(Object.keys((await call('GET', `/v1/webhooks/${registered.body.data.id}`, bManagement.key)).body.data).sort()).toEqual(
      Object.keys(schemaOf('/v1/webhooks/{id}', 'get').data.properties).sort(),
    );
    expect((await call('DELETE', `/v1/webhooks/${registered.body.data.id}`, bManagement.key)).status).toBe(200);
  });

  it('pages the list with limit and after', async () => {
    const c = await createCustomer(db, upstream.url);
    const m = await ops.createKey({ accountId: c.accountId, kind: 'management' });
    for (let i = 0; i < 3; i++) expect((await call('POST', '/v1/keys', m.key, { name: `k${i}` })).status).toBe(201);
    // 5 keys: the customer's, the management key, and three made here.
    const seen: string[] = [];
    let after: string | null = null;
    for (let page = 0; page < 5; page++) {
      const r = await call('GET', `/v1/keys?limit=2${after ? `&after=${after}` : ''}`, m.key);
      expect(r.status).toBe(200);
      seen.push(...(r.body.data as { id: string }[]).map((k) => k.id));
      if (!r.body.has_more) break;
      after = r.body.last_id;
    }
    expect(seen).toHaveLength(5);
    expect(new Set(seen).size).toBe(5);
  });
});

describe('management keys and model calls', () => {
  it('refuses model calls with 403 in OpenAI shape (Anthropic shape on /v1/messages) and meters each refusal', async () => {
    const paths = ['/v1/chat/completions', '/v1/completions', '/v1/embeddings', '/v1/responses'];
    for (const path of paths) {
      const r = await call('POST', path, aManagement.key, { model: a.model, input: 'hi', prompt: 'hi', messages: [{ role: 'user', content: 'hi' }] });
      expect({ path, status: r.status, body: r.body }).toMatchObject({
        path,
        status: 403,
        body: { error: { type: 'permission_error', code: 'management_key_cannot_call_models' } },
      });
      await gw.batcher.flush();
      const row = await eventually(
        async () => {
          const e = await db('usage_events').where({ request_id: r.requestId }).first();
          expect(e).toBeTruthy();
          return e;
        },
        { timeoutMs: 10_000, message: `the refusal on ${path} to be metered` },
      );
      expect(row).toMatchObject({ status_code: 403, error_type: 'management_key_cannot_call_models', api_key_id: aManagement.id, account_id: a.accountId });
      expect(Number(row.cost)).toBe(0);
    }
    const messages = await call('POST', '/v1/messages', aManagement.key, { model: a.model, max_tokens: 1, messages: [{ role: 'user', content: 'hi' }] }, { 'anthropic-version': '2023-06-01' });
    expect(messages.status).toBe(403);
    expect(messages.body).toMatchObject({ type: 'error', error: { type: 'permission_error' } });
    await gw.batcher.flush();
    await eventually(
      async () => expect(await db('usage_events').where({ request_id: messages.requestId, status_code: 403, error_type: 'management_key_cannot_call_models' }).first()).toBeTruthy(),
      { timeoutMs: 10_000, message: 'the /v1/messages refusal to be metered' },
    );
    // Nothing reached the provider for any of them, and the inference key still works.
    expect((await chat(a.key, a.model)).status).toBe(200);
  });
});

describe('key expiry', () => {
  it('refuses an expired key with 401 key_expired on model calls and account endpoints', async () => {
    const inference = await ops.createKey({ accountId: a.accountId, name: 'expiring', expiresAt: NEXT_YEAR.toISOString() });
    const management = await ops.createKey({ accountId: a.accountId, kind: 'management', expiresAt: NEXT_YEAR.toISOString() });
    // Placed in the past directly: no interface accepts a past expiry.
    await db('api_keys').whereIn('id', [inference.id, management.id]).update({ expires_at: new Date(Date.now() - 60_000) });
    const chatted = await chat(inference.key, a.model);
    expect(chatted.status).toBe(401);
    expect(chatted.body.error).toMatchObject({ code: 'key_expired', type: 'invalid_request_error' });
    for (const path of ['/v1/keys', '/v1/key']) {
      const r = await call('GET', path, management.key);
      expect({ path, status: r.status, code: r.body.error?.code }).toEqual({ path, status: 401, code: 'key_expired' });
    }
  });

  it('refuses a past or far-future expiry from staff and from the API', async () => {
    await expect(ops.createKey({ accountId: a.accountId, expiresAt: '2020-01-01T00:00:00Z' })).rejects.toThrow(/expiresAt must be in the future/);
    const past = await call('POST', '/v1/keys', aManagement.key, { name: 'x', expires_at: '2020-01-01T00:00:00Z' });
    expect(past.status).toBe(400);
    expect(past.body.error).toMatchObject({ param: 'expires_at', type: 'invalid_request_error' });
    const far = await call('POST', '/v1/keys', aManagement.key, { name: 'x', expires_at: '2199-01-01T00:00:00Z' });
    expect(far.status).toBe(400);
  });
});

describe('staff create the first management key', () => {
  it('with the CLI (--kind management) and the admin API (kind), and the key manages the account at once', async () => {
    const c = await createCustomer(db, upstream.url);
    const env = testEnv(config);
    const fromCli = await runCliJson(['keys', 'create', '--account', c.accountId, '--name', 'automation', '--kind', 'management', '--expires-at', NEXT_YEAR.toISOString()], env);
    expect(fromCli).toMatchObject({ kind: 'management', expiresAt: NEXT_YEAR.toISOString(), accountId: c.accountId });
    const listed = await call('GET', '/v1/keys', fromCli.key);
    expect(listed.status).toBe(200);
    expect((await chat(fromCli.key, c.model)).status).toBe(403);
    // A bad kind is one line on stderr.
    const bad = await runCli(['keys', 'create', '--account', c.accountId, '--kind', 'root'], env);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toMatch(/kind must be inference or management/);

    const admin = await serve(createAdminApp({ db, billing: config.billing, config, clock: systemClock, logger: silentLogger, readiness: {}, readyCheckTimeoutMs: 1000 }));
    try {
      const token = (await staffService({ db }).createStaffToken({ role: 'billing' })).token;
      const post = (body: unknown) =>
        fetch(`${admin.url}/billing/keys`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      const created = await post({ accountId: c.accountId, kind: 'management', spendLimit: '50', limitWindow: 'weekly' });
      expect(created.status).toBe(201);
      const body = (await created.json()) as { key: string; kind: string; spendLimit: string; limitWindow: string };
      expect(body).toMatchObject({ kind: 'management', spendLimit: '50', limitWindow: 'weekly' });
      expect((await call('GET', '/v1/keys', body.key)).status).toBe(200);
      const refused = await post({ accountId: c.accountId, limitWindow: 'weekly' });
      expect(refused.status).toBe(400);
      expect(((await refused.json()) as { detail: string }).detail).toMatch(/limitWindow needs a spendLimit/);

      // The console: a billing person signs in, opens the account and creates the key; the page shows it once.
      const email = `bill-${c.accountId.slice(0, 8)}@mixroute.example`;
      await staffService({ db }).createUser({ email, name: 'Billie', role: 'billing', password: 'correct horse battery staple' });
      const jar = new Map<string, string>();
      const browse = async (method: 'GET' | 'POST', path: string, form?: Record<string, string>) => {
        const res = await fetch(admin.url + path, {
          method,
          redirect: 'manual',
          headers: {
            ...(jar.size ? { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') } : {}),
            ...(form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
          },
          ...(form ? { body: new URLSearchParams(form).toString() } : {}),
        });
        for (const cookie of res.headers.getSetCookie()) {
          const [name, ...value] = cookie.split(';')[0]!.split('=');
          jar.set(name!.trim(), value.join('='));
        }
        return { status: res.status, body: await res.text(), cacheControl: res.headers.get('cache-control') };
      };
      const csrf = (page: string) => /name="_csrf" value="([^"]*)"/.exec(page)?.[1] ?? '';
      const login = await browse('GET', '/console/login');
      expect((await browse('POST', '/console/login', { _csrf: csrf(login.body), next: '/console', email, password: 'correct horse battery staple' })).status).toBe(303);
      const accountPage = await browse('GET', `/console/accounts/${c.accountId}`);
      expect(accountPage.body).toContain('Create a management key');
      const made = await browse('POST', `/console/accounts/${c.accountId}/management-keys`, { _csrf: csrf(accountPage.body), name: 'from the console', expiresAt: '' });
      expect(made.status).toBe(200);
      expect(made.cacheControl).toBe('no-store');
      const consoleKey = /<code id="new-key">([^<]+)<\/code>/.exec(made.body)?.[1];
      expect(consoleKey).toBeTruthy();
      expect((await call('GET', '/v1/keys', consoleKey!)).status).toBe(200);
      expect((await db('api_keys').where({ account_id: c.accountId, name: 'from the console' }).first()).kind).toBe('management');
      // Listed on the account page afterwards, without the secret.
      const after = await browse('GET', `/console/accounts/${c.accountId}`);
      expect(after.body).toContain('from the console');
      expect(after.body).not.toContain(consoleKey!);
    } finally {
      await admin.close();
    }
  });
});

describe('alert settings over /v1/alerts', () => {
  it('lets a management key read and set its own account low-balance thresholds; inference keys and other accounts cannot', async () => {
    const initial = await call('GET', '/v1/alerts', aManagement.key);
    expect(initial.status).toBe(200);
    expect(initial.body.data).toEqual({ low_balance_thresholds: [], email_alerts: true, updated_at: null });

    const set = await call('PATCH', '/v1/alerts', aManagement.key, { low_balance_thresholds: ['50', '10.5'], email_alerts: false });
    expect(set.status).toBe(200);
    expect(set.body.data.low_balance_thresholds).toEqual(expect.arrayContaining(['50', '10.5']));
    expect(set.body.data.email_alerts).toBe(false);
    const stored = await db('account_alert_settings').where({ account_id: a.accountId }).first();
    expect(stored.email_alerts).toBe(false);
    // B's management key sees B's settings, untouched by A's change.
    expect((await call('GET', '/v1/alerts', bManagement.key)).body.data.low_balance_thresholds).toEqual([]);

    // An inference key cannot read or change them.
    for (const [method, body] of [['GET', undefined], ['PATCH', { email_alerts: true }]] as const) {
      const refused = await call(method, '/v1/alerts', a.key, body);
      expect(refused.status).toBe(403);
      expect(refused.body.error.code).toBe('management_key_required');
    }
    // Bounds and unknown fields: 400 in OpenAI's shape, naming the field, and nothing stored.
    const tooMany = await call('PATCH', '/v1/alerts', aManagement.key, { low_balance_thresholds: ['1', '2', '3', '4', '5', '6'] });
    expect(tooMany.status).toBe(400);
    expect(tooMany.body.error.param).toBe('low_balance_thresholds');
    const unknownField = await call('PATCH', '/v1/alerts', aManagement.key, { account_id: b.accountId });
    expect(unknownField.status).toBe(400);
    expect(unknownField.body.error.param).toBe('account_id');
    const negative = await call('PATCH', '/v1/alerts', aManagement.key, { low_balance_thresholds: ['-5'] });
    expect(negative.status).toBe(400);
    expect((await db('account_alert_settings').where({ account_id: a.accountId }).first()).email_alerts).toBe(false);
    expect(await db('account_alert_settings').where({ account_id: b.accountId }).first()).toBeUndefined();
  });
});
