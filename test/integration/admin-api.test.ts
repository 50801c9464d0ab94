import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminApp } from '../../src/admin/app';
import { adminRoutes } from '../../src/admin/routes';
import { systemClock } from '../../src/clock';
import { STAFF_ROLES, type StaffRole } from '../../src/staff/staff.rules';
import { silentLogger, testConfig, testDb } from '../helpers/env';
import { serve } from '../helpers/servers';
import { staffService } from '../../src/staff/staff.service';

const config = testConfig();
const db = testDb(config);
let base: string;
let close: () => Promise<void>;
const tokens = {} as Record<StaffRole, string>;

beforeAll(async () => {
  const app = createAdminApp({ db, billing: config.billing, config, clock: systemClock, logger: silentLogger, readiness: {}, readyCheckTimeoutMs: 1000 });
  ({ url: base, close } = await serve(app));
  for (const role of STAFF_ROLES) tokens[role] = (await staffService({ db }).createStaffToken({ role })).token;
});
afterAll(async () => {
  await close();
  await db.destroy();
});

async function call(method: string, path: string, token?: string, body?: unknown, rawBody?: string) {
  const res = await fetch(base + path, {
    method: method.toUpperCase(),
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(method !== 'get' && (body !== undefined || rawBody !== undefined) ? { 'content-type': 'application/json' } : {}),
    },
    body: method === 'get' ? undefined : (rawBody ?? (body === undefined ? undefined : JSON.stringify(body))),
  });
  const text = await res.text();
  return { status: res.status, contentType: res.headers.get('content-type') ?? '', body: text ? JSON.parse(text) : undefined, headers: res.headers };
}

const SOME_ID = '00000000-0000-4000-8000-000000000000';
const concretePath = (p: string) => p.replace(/:\w+/g, SOME_ID);

describe('admin API roles', () => {
  it('declares roles on every route', () => {
    expect(adminRoutes.length).toBeGreaterThan(10);
    for (const r of adminRoutes) expect(r.roles.length, `${r.method} ${r.path}`).toBeGreaterThan(0);
  });

  for (const route of adminRoutes) {
    const label = `${route.method.toUpperCase()} ${route.path}`;
    it(`${label} refuses no token (401) and every role it does not admit (403)`, async () => {
      const none = await call(route.method, concretePath(route.path), undefined, {});
      expect(none.status).toBe(401);
      expect(none.contentType).toContain('application/problem+json');
      expect(none.headers.get('www-authenticate')).toContain('Bearer');

      const bogus = await call(route.method, concretePath(route.path), 'mrs-not-a-real-token-at-all', {});
      expect(bogus.status).toBe(401);

      const refused = STAFF_ROLES.filter((r) => !route.roles.includes(r));
      for (const role of refused) {
        const res = await call(route.method, concretePath(route.path), tokens[role], {});
        expect(res.status, `${label} as ${role}`).toBe(403);
        expect(res.body.detail).toContain(role);
      }
      for (const role of route.roles) {
        const res = await call(route.method, concretePath(route.path), tokens[role], {});
        expect([401, 403], `${label} as ${role}`).not.toContain(res.status);
      }
    });
  }

  it('stops accepting a revoked staff token at once', async () => {
    const t = await staffService({ db }).createStaffToken({ role: 'billing' });
    expect((await call('get', '/billing/accounts', t.token)).status).toBe(200);
    await staffService({ db }).revokeStaffToken({ id: t.id });
    expect((await call('get', '/billing/accounts', t.token)).status).toBe(401);
  });
});

describe('admin API operations', () => {
  it('sets up a customer end to end', async () => {
    const acc = await call('post', '/billing/accounts', tokens.billing, { name: 'Api Co', country: 'fr', creditLimit: '100' });
    expect(acc.status).toBe(201);
    expect(acc.body).toMatchObject({ name: 'Api Co', country: 'FR', creditLimit: '100' });

    const shown = await call('get', `/billing/accounts/${acc.body.id}`, tokens.billing);
    expect(shown.body.id).toBe(acc.body.id);

    const user = await call('post', '/billing/users', tokens.billing, { accountId: acc.body.id, name: 'Bo', email: 'bo@example.com' });
    expect(user.status).toBe(201);

    const key = await call('post', '/billing/keys', tokens.billing, { accountId: acc.body.id, userId: user.body.id, rateLimitRpm: 60 });
    expect(key.status).toBe(201);
    expect(key.body.key).toMatch(/^mr-/);
    const keys = await call('get', `/billing/accounts/${acc.body.id}/keys`, tokens.billing);
    expect(keys.body).toHaveLength(1);
    expect(keys.body[0].key).toBeUndefined();

    const revoked = await call('post', `/billing/keys/${key.body.id}/revoke`, tokens.billing);
    expect(revoked.status).toBe(200);
    expect(revoked.body.revokedAt).toBeTruthy();

    const dup = await call('post', '/billing/users', tokens.billing, { accountId: acc.body.id, name: 'Bo 2', email: 'BO@example.com' });
    expect(dup.status).toBe(409);
  });

  it('lets only admins mint staff tokens', async () => {
    const res = await call('post', '/billing/staff-tokens', tokens.admin, { role: 'compliance', name: 'dpo' });
    expect(res.status).toBe(201);
    expect(res.body.token).toMatch(/^mrs-/);
  });
});

describe('admin API errors are problem JSON', () => {
  it('lists every bad field', async () => {
    const res = await call('post', '/billing/accounts', tokens.billing, { name: '', plan: 'gold', creditLimit: 5 });
    expect(res.status).toBe(400);
    expect(res.contentType).toContain('application/problem+json');
    expect(res.body).toMatchObject({ status: 400, title: 'Bad Request' });
    expect(res.body.errors.map((e: { field: string }) => e.field).sort()).toEqual(['creditLimit', 'name', 'plan']);
    expect(res.body.requestId).toMatch(/^adm-/);
  });

  it('answers malformed JSON, unknown routes, wrong methods and missing records', async () => {
    const malformed = await call('post', '/billing/accounts', tokens.billing, undefined, '{"name": "x",');
    expect(malformed.status).toBe(400);
    expect(malformed.body.detail).toContain('not valid JSON');

    const unknown = await call('get', '/billing/nothing-here', tokens.billing);
    expect(unknown.status).toBe(404);
    expect(unknown.contentType).toContain('application/problem+json');

    const wrongMethod = await call('delete', '/billing/accounts', tokens.billing);
    expect(wrongMethod.status).toBe(405);

    const missing = await call('get', `/billing/accounts/${SOME_ID}`, tokens.billing);
    expect(missing.status).toBe(404);
    expect(missing.body.detail).toContain(SOME_ID);

    const notUuid = await call('get', '/billing/accounts/not-a-uuid', tokens.billing);
    expect(notUuid.status).toBe(400);
  });

  it('never shows a stack trace', async () => {
    const res = await call('post', '/billing/keys', tokens.billing, { accountId: 'x'.repeat(5000) });
    expect(JSON.stringify(res.body)).not.toMatch(/\bat .+\.(ts|js):\d+/);
  });
});

describe('OpenAPI document', () => {
  it('describes every route with its roles, without a token', async () => {
    const res = await call('get', '/openapi.json');
    expect(res.status).toBe(200);
    expect(res.body.openapi).toBe('3.1.0');
    for (const r of adminRoutes) {
      const op = res.body.paths[r.path.replace(/:(\w+)/g, '{$1}')]?.[r.method];
      expect(op, `${r.method} ${r.path}`).toBeDefined();
      expect(op['x-roles']).toEqual(r.roles);
    }
    expect(res.body.paths['/billing/accounts'].post.requestBody.content['application/json'].schema.properties.creditLimit.type).toBe('string');
  });
});
