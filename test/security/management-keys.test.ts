import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accountsService } from '../../src/accounts/accounts.service';
import { KEYS_PAGE_MAX, MAX_ACTIVE_KEYS_PER_ACCOUNT } from '../../src/accounts/keys.schemas';
import { issueSecret } from '../../src/auth/secrets';
import { systemClock } from '../../src/clock';
import { testConfig, testDb } from '../helpers/env';
import { startFakeUpstream, type FakeUpstream } from '../helpers/fakeUpstream';
import { createCustomer, startTestGateway, UPSTREAM_KEY, type Customer } from '../helpers/gateway';

/**
 * An attacker's view of /v1/keys: an inference key reaching for key management,
 * one account's management key reaching for another account's keys, a
 * management key minting or unseating management keys, and input meant to
 * overflow limits or lists.
 */
const config = testConfig();
const db = testDb(config);
const ops = accountsService({ db, clock: systemClock });
let upstream: FakeUpstream;
let gw: Awaited<ReturnType<typeof startTestGateway>>;
let a: Customer;
let b: Customer;
let aManagement: string;
let bManagementId: string;

beforeAll(async () => {
  upstream = await startFakeUpstream({ apiKey: UPSTREAM_KEY });
  a = await createCustomer(db, upstream.url);
  b = await createCustomer(db, upstream.url);
  aManagement = (await ops.createKey({ accountId: a.accountId, kind: 'management' })).key;
  bManagementId = (await ops.createKey({ accountId: b.accountId, kind: 'management' })).id;
  gw = await startTestGateway({}, config);
});
afterAll(async () => {
  await gw?.stop();
  await upstream?.close();
  await db.destroy();
});

async function call(method: string, path: string, key: string, body?: unknown, rawBody?: string) {
  const res = await fetch(`${gw.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    ...(rawBody !== undefined ? { body: rawBody } : body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  let json: any = text;
  try {
    json = JSON.parse(text);
  } catch {
    // not JSON: kept as text, and the shape assertions below fail on it
  }
  return { status: res.status, body: json };
}

const keysOf = async (accountId: string) => db('api_keys').where({ account_id: accountId }).orderBy('id').select('id', 'name', 'kind', 'revoked_at', 'spend_limit', 'expires_at', 'rate_limit_rpm');

describe('/v1/keys: privilege escalation', () => {
  it('refuses an inference key every key-management verb, and changes nothing', async () => {
    const before = await keysOf(a.accountId);
    const attempts = [
      call('POST', '/v1/keys', a.key, { name: 'mine now' }),
      call('POST', '/v1/keys', a.key, { name: 'mine now', kind: 'management' }),
      call('GET', '/v1/keys', a.key),
      call('GET', `/v1/keys/${a.keyId}`, a.key),
      call('PATCH', `/v1/keys/${a.keyId}`, a.key, { rate_limit_rpm: 1_000_000, limit: null }),
      call('DELETE', `/v1/keys/${a.keyId}`, a.key),
    ];
    for (const r of await Promise.all(attempts)) {
      expect(r.status).toBe(403);
      expect(r.body.error).toMatchObject({ type: 'permission_error', code: 'management_key_required' });
    }
    expect(await keysOf(a.accountId)).toEqual(before);
  });

  it("answers A's management key 404 for every key of B, and B's keys stay as they were", async () => {
    const bBefore = await keysOf(b.accountId);
    for (const id of [b.keyId, bManagementId]) {
      for (const [method, body] of [
        ['GET', undefined],
        ['PATCH', { name: 'pwned', limit: '0.01' }],
        ['PATCH', { disabled: true }],
        ['DELETE', undefined],
      ] as const) {
        const r = await call(method, `/v1/keys/${id}`, aManagement, body);
        expect({ method, id, status: r.status, code: r.body.error?.code }).toEqual({ method, id, status: 404, code: 'key_not_found' });
        // The answer names nothing of B.
        expect(JSON.stringify(r.body)).not.toContain(b.accountId);
      }
    }
    // Unknown and malformed ids are the same 404 as B's.
    for (const id of [randomUUID(), 'not-a-uuid', '%00', 'x'.repeat(500)]) {
      expect((await call('GET', `/v1/keys/${encodeURIComponent(id)}`, aManagement)).status).toBe(404);
    }
    // B's key as a list cursor finds nothing either.
    const cursor = await call('GET', `/v1/keys?after=${b.keyId}`, aManagement);
    expect(cursor.status).toBe(400);
    expect(JSON.stringify(cursor.body)).not.toContain(b.accountId);
    expect(await keysOf(b.accountId)).toEqual(bBefore);
  });

  it('keeps management keys in staff hands: a management key can neither mint, change nor revoke one', async () => {
    const before = await keysOf(a.accountId);
    const other = await ops.createKey({ accountId: a.accountId, kind: 'management', name: 'the other one' });
    const self = (await db('api_keys').where({ account_id: a.accountId, kind: 'management' }).whereNot({ id: other.id }).first()).id as string;
    const refusals = [
      await call('POST', '/v1/keys', aManagement, { name: 'second admin', kind: 'management' }),
      await call('PATCH', `/v1/keys/${other.id}`, aManagement, { expires_at: new Date(Date.now() + 86_400_000).toISOString() }),
      await call('DELETE', `/v1/keys/${other.id}`, aManagement),
      await call('PATCH', `/v1/keys/${self}`, aManagement, { rate_limit_rpm: 1_000_000 }),
    ];
    for (const r of refusals) expect(r.body.error).toMatchObject({ type: 'permission_error', code: 'management_key_managed_by_staff' });
    expect(refusals.map((r) => r.status)).toEqual([403, 403, 403, 403]);
    expect((await keysOf(a.accountId)).filter((k) => k.id !== other.id)).toEqual(before);
    expect((await db('api_keys').where({ id: other.id }).first()).revoked_at).toBeNull();
  });
});

describe('/v1/keys: bounded input', () => {
  it('refuses out-of-range, oversized and malformed settings with 400 in OpenAI shape, creating nothing', async () => {
    const before = (await keysOf(a.accountId)).length;
    const bad: Record<string, unknown>[] = [
      { name: 'x', limit: '-5' },
      { name: 'x', limit: -5 },
      { name: 'x', limit: '0' },
      { name: 'x', limit: '1000000000.000000000001' },
      { name: 'x', limit: '1000000001' },
      { name: 'x', limit: '1e400' },
      { name: 'x', limit: 1e300 },
      { name: 'x', limit: '0.0000000000001' },
      { name: 'x', limit: 'NaN' },
      { name: 'x', limit: { $gt: 0 } },
      { name: 'x', limit_reset: 'daily' },
      { name: 'x', limit: '5', limit_reset: 'hourly' },
      { name: 'x', rate_limit_rpm: 0 },
      { name: 'x', rate_limit_rpm: -1 },
      { name: 'x', rate_limit_rpm: 1.5 },
      { name: 'x', rate_limit_rpm: 10_000_000 },
      { name: 'x', rate_limit_rpm: '60' },
      { name: 'x', limit_alert_percents: [10, 20, 30, 40, 50, 60] },
      { name: 'x', limit_alert_percents: [0] },
      { name: 'x', limit_alert_percents: [101] },
      { name: 'x', expires_at: 'tomorrow' },
      { name: 'x', expires_at: '2020-01-01T00:00:00Z' },
      { name: 'x'.repeat(201) },
      { name: '   ' },
      {},
      { name: 'x', include_byok_in_limit: true },
      { name: 'x', account_id: b.accountId },
      { name: 'x', kind: 'root' },
    ];
    for (const body of bad) {
      const r = await call('POST', '/v1/keys', aManagement, body);
      expect({ body, status: r.status }).toEqual({ body, status: 400 });
      expect(r.body.error).toMatchObject({ type: 'invalid_request_error', message: expect.any(String), code: expect.any(String) });
    }
    const big = await call('POST', '/v1/keys', aManagement, undefined, JSON.stringify({ name: 'x', pad: 'y'.repeat(20_000) }));
    expect(big.status).toBe(413);
    expect(big.body.error.code).toBe('request_too_large');
    const broken = await call('POST', '/v1/keys', aManagement, undefined, '{"name": ');
    expect(broken.status).toBe(400);
    expect(broken.body.error.code).toBe('invalid_json');
    expect((await keysOf(a.accountId)).length).toBe(before);

    // The same bounds on PATCH, and the key is unchanged.
    const target = await call('POST', '/v1/keys', aManagement, { name: 'target', limit: '5', limit_reset: 'daily' });
    const id = target.body.data.id as string;
    const row = await db('api_keys').where({ id }).first();
    for (const body of [{ limit: '-1' }, { limit: null }, { rate_limit_rpm: 0 }, {}, { name: 'ok', secret: 'x' }, { kind: 'management' }]) {
      const r = await call('PATCH', `/v1/keys/${id}`, aManagement, body);
      expect({ body, status: r.status }).toEqual({ body, status: 400 });
    }
    expect(await db('api_keys').where({ id }).first()).toEqual(row);
  });

  it('bounds the list page and the number of keys an account may hold', async () => {
    for (const q of ['limit=0', `limit=${KEYS_PAGE_MAX + 1}`, 'limit=-1', 'limit=abc', 'limit=1e9', 'after=not-an-id', 'offset=5']) {
      const r = await call('GET', `/v1/keys?${q}`, aManagement);
      expect({ q, status: r.status }).toEqual({ q, status: 400 });
    }
    const c = await createCustomer(db, upstream.url);
    const m = await ops.createKey({ accountId: c.accountId, kind: 'management' });
    // Fill the account up to one below the cap directly (the API would take a thousand calls).
    const have = (await db('api_keys').where({ account_id: c.accountId }).whereNull('revoked_at').count({ n: '*' }).first())!.n;
    const rows = Array.from({ length: MAX_ACTIVE_KEYS_PER_ACCOUNT - 1 - Number(have) }, () => {
      const s = issueSecret('api_key');
      return { account_id: c.accountId, key_hash: s.hash, prefix: s.displayPrefix, name: 'filler' };
    });
    await db.batchInsert('api_keys', rows, 500);
    const last = await call('POST', '/v1/keys', m.key, { name: 'the last one' });
    expect(last.status).toBe(201);
    const over = await call('POST', '/v1/keys', m.key, { name: 'one too many' });
    expect(over.status).toBe(409);
    expect(over.body.error.code).toBe('too_many_keys');
    // A full page is the most one request returns, however many keys there are.
    const page = await call('GET', '/v1/keys', m.key);
    expect(page.body.data).toHaveLength(KEYS_PAGE_MAX);
    expect(page.body.has_more).toBe(true);
    // Revoking one makes room again.
    expect((await call('DELETE', `/v1/keys/${last.body.data.id}`, m.key)).status).toBe(200);
    expect((await call('POST', '/v1/keys', m.key, { name: 'room again' })).status).toBe(201);
  });

  it('lets no concurrent creates past the cap', async () => {
    const c = await createCustomer(db, upstream.url);
    const m = await ops.createKey({ accountId: c.accountId, kind: 'management' });
    const have = Number((await db('api_keys').where({ account_id: c.accountId }).whereNull('revoked_at').count({ n: '*' }).first())!.n);
    const rows = Array.from({ length: MAX_ACTIVE_KEYS_PER_ACCOUNT - 3 - have }, () => {
      const s = issueSecret('api_key');
      return { account_id: c.accountId, key_hash: s.hash, prefix: s.displayPrefix, name: 'filler' };
    });
    await db.batchInsert('api_keys', rows, 500);
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => call('POST', '/v1/keys', m.key, { name: `race ${i}` })));
    expect(results.filter((r) => r.status === 201)).toHaveLength(3);
    expect(results.filter((r) => r.status === 409)).toHaveLength(5);
    const active = Number((await db('api_keys').where({ account_id: c.accountId }).whereNull('revoked_at').count({ n: '*' }).first())!.n);
    expect(active).toBe(MAX_ACTIVE_KEYS_PER_ACCOUNT);
  });
});
