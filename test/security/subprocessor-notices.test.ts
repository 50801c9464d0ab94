import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accountsService } from '../../src/accounts/accounts.service';
import { createAdminApp } from '../../src/admin/app';
import { systemClock } from '../../src/clock';
import { staffService } from '../../src/staff/staff.service';
import type { StaffRole } from '../../src/staff/staff.rules';
import { silentLogger, testConfig, testDb } from '../helpers/env';
import { startFakeUpstream, type FakeUpstream } from '../helpers/fakeUpstream';
import { createCustomer, startTestGateway, UPSTREAM_KEY, type Customer } from '../helpers/gateway';
import { serve } from '../helpers/servers';

/**
 * The boundaries of sub-processor notices: the admin routes (compliance
 * only where they decide or reveal the notices of every account; billing
 * staff read an account's own), the client API (a management key reaches its
 * own account's notices only), and bounded input on both (reason and
 * reference length and control characters, the decision enum, ids, limits).
 * A refused call changes no row.
 */
const config = testConfig();
const db = testDb(config);
const tag = randomUUID().slice(0, 8);
const tokens = {} as Record<StaffRole, string>;
let admin: string;
let closeAdmin: () => Promise<void>;
let upstream: FakeUpstream;
let gw: Awaited<ReturnType<typeof startTestGateway>>;
/** Only b had an agreement when the change was made. */
let a: Customer;
let b: Customer;
const mgmt = {} as Record<'a' | 'b', { key: string; keyId: string }>;
let changeId: string;

async function call(role: StaffRole, method: 'GET' | 'POST', path: string, body?: unknown) {
  const res = await fetch(admin + path, {
    method,
    headers: { authorization: `Bearer ${tokens[role]}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  expect(text).not.toMatch(/\bat .+\.ts:\d+/); // never a stack trace
  return { status: res.status, contentType: res.headers.get('content-type') ?? '', body: JSON.parse(text) as any };
}

async function client(key: string, method: 'GET' | 'POST', path: string, body?: unknown) {
  const res = await fetch(gw.url + path, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  expect(text).not.toMatch(/\bat .+\.ts:\d+/);
  return { status: res.status, body: JSON.parse(text) as any };
}

const noticeOf = async (accountId: string) => db('subprocessor_notices').where({ change_id: changeId, account_id: accountId }).first();
const expectOpenAIError = (r: { status: number; body: any }, status: number) => {
  expect(r.status).toBe(status);
  expect(Object.keys(r.body.error).sort()).toEqual(['code', 'message', 'param', 'type']);
};

beforeAll(async () => {
  ({ url: admin, close: closeAdmin } = await serve(createAdminApp({ db, billing: config.billing, config, clock: systemClock, logger: silentLogger, readiness: {}, readyCheckTimeoutMs: 1000 })));
  for (const role of ['billing', 'compliance', 'admin'] as const) tokens[role] = (await staffService({ db }).createStaffToken({ role })).token;
  upstream = await startFakeUpstream({ apiKey: UPSTREAM_KEY });
  [a, b] = [await createCustomer(db, upstream.url), await createCustomer(db, upstream.url)];
  for (const [k, cust] of [['a', a], ['b', b]] as const) {
    const key = await accountsService({ db, clock: systemClock }).createKey({ accountId: cust.accountId, userId: cust.userId });
    await db('api_keys').where({ id: key.id }).update({ kind: 'management' });
    mgmt[k] = { key: key.key, keyId: key.id };
  }
  gw = await startTestGateway();
  expect((await call('compliance', 'POST', `/billing/accounts/${b.accountId}/processing-agreement`, { agreementRef: `DPA-${tag}`, signedOn: '2026-01-01', reason: 'signed' })).status).toBe(200);
  const created = await call('compliance', 'POST', '/privacy/register/recipients', { kind: 'hosting', name: `Sec hosting ${tag}`, countries: ['US'], reason: 'new hosting' });
  expect(created.status).toBe(201);
  changeId = created.body.subprocessorChange.id;
  // a signs only now: it has no notice of this change.
  expect((await call('compliance', 'POST', `/billing/accounts/${a.accountId}/processing-agreement`, { agreementRef: `DPA-A-${tag}`, signedOn: '2026-01-01', reason: 'signed' })).status).toBe(200);
});
afterAll(async () => {
  await gw?.stop();
  await upstream?.close();
  await closeAdmin?.();
  await db.destroy();
});

describe('admin API', () => {
  it('refuses billing staff every compliance-only route, writing nothing', async () => {
    const routes: [string, string, unknown?][] = [
      ['GET', '/privacy/register/subprocessor-changes'],
      ['GET', `/privacy/register/subprocessor-changes/${changeId}`],
      ['GET', `/privacy/register/subprocessor-changes/${changeId}/notices`],
      ['POST', '/privacy/register/subprocessor-changes/resume'],
      ['POST', `/privacy/register/subprocessor-changes/${changeId}/accounts/${b.accountId}/decision`, { decision: 'accept', reason: 'billing tries' }],
      ['POST', `/billing/accounts/${b.accountId}/processing-agreement`, { agreementRef: 'EVIL', signedOn: '2026-01-01', reason: 'billing tries' }],
    ];
    for (const [method, path, body] of routes) {
      const r = await call('billing', method as 'GET' | 'POST', path, body);
      expect(r.status, `${method} ${path}`).toBe(403);
      expect(r.contentType).toContain('application/problem+json');
    }
    expect((await noticeOf(b.accountId)).status).toBe('pending');
    expect((await db('account_processing_agreements').where({ account_id: b.accountId }).first()).agreement_ref).toBe(`DPA-${tag}`);
  });

  it('bounds the reason and reference: length, control characters, unknown fields', async () => {
    const path = `/billing/accounts/${b.accountId}/processing-agreement`;
    const good = { agreementRef: 'DPA-OK', signedOn: '2026-01-01', reason: 'a fine reason' };
    for (const bad of [
      { ...good, reason: 'x'.repeat(501) },
      { ...good, reason: 'line one\nline two' },
      { ...good, reason: 'bell\u0007' },
      { ...good, reason: 'ok' },
      { ...good, agreementRef: 'R'.repeat(201) },
      { ...good, agreementRef: 'DPA\r\nX-Injected: 1' },
      { ...good, agreementRef: '' },
      { ...good, signedOn: '2026-13-01' },
      { ...good, admin: true },
      [good],
    ]) {
      const r = await call('compliance', 'POST', path, bad);
      expect(r.status, JSON.stringify(bad).slice(0, 80)).toBe(400);
      expect(r.contentType).toContain('application/problem+json');
    }
    expect((await call('compliance', 'POST', path, '{"agreementRef":')).status).toBe(400);
    expect((await db('account_processing_agreements').where({ account_id: b.accountId }).first()).agreement_ref).toBe(`DPA-${tag}`);

    const decision = `/privacy/register/subprocessor-changes/${changeId}/accounts/${b.accountId}/decision`;
    for (const bad of [
      { decision: 'accept', reason: 'y'.repeat(501) },
      { decision: 'accept', reason: 'tab\there' },
      { decision: 'maybe', reason: 'a valid reason' },
      { decision: 'ACCEPT', reason: 'a valid reason' },
      { decision: ['accept'], reason: 'a valid reason' },
      { decision: 'accept', reason: 'a valid reason', status: 'effective' },
    ]) {
      const r = await call('compliance', 'POST', decision, bad);
      expect(r.status, JSON.stringify(bad).slice(0, 80)).toBe(400);
      expect(r.contentType).toContain('application/problem+json');
    }
    expect((await noticeOf(b.accountId)).status).toBe('pending');
  });

  it('answers ids that are not UUIDs with 404 and bounds limits and cursors', async () => {
    for (const path of [
      "/privacy/register/subprocessor-changes/' OR 1=1 --",
      '/privacy/register/subprocessor-changes/not-a-uuid/notices',
      `/billing/accounts/${'9'.repeat(300)}/subprocessor-notices`,
    ]) {
      const r = await call('compliance', 'GET', encodeURI(path));
      expect(r.status, path).toBe(404);
    }
    expect((await call('compliance', 'POST', `/privacy/register/subprocessor-changes/not-a-uuid/accounts/${b.accountId}/decision`, { decision: 'accept', reason: 'a valid reason' })).status).toBe(404);
    expect((await call('compliance', 'POST', `/privacy/register/subprocessor-changes/${changeId}/accounts/not-a-uuid/decision`, { decision: 'accept', reason: 'a valid reason' })).status).toBe(404);
    for (const q of ['limit=100000000', 'limit=-1', 'limit=abc', 'limit=1&limit=2', 'open=yes', 'evil=1']) {
      const r = await call('compliance', 'GET', `/privacy/register/subprocessor-changes?${q}`);
      expect(r.status, q).toBe(400);
      expect(r.contentType).toContain('application/problem+json');
    }
    for (const q of ['limit=99999999999999999999', 'after=not-a-uuid', `after=${'a'.repeat(5000)}`]) {
      expect((await call('compliance', 'GET', `/privacy/register/subprocessor-changes/${changeId}/notices?${q}`)).status, q).toBe(400);
    }
  });
});

describe('client API', () => {
  it("does not let account a's management key read or decide account b's notice", async () => {
    for (const [method, path] of [
      ['GET', `/v1/subprocessor-notices/${changeId}`],
      ['POST', `/v1/subprocessor-notices/${changeId}/accept`],
      ['POST', `/v1/subprocessor-notices/${changeId}/object`],
    ] as const) {
      const r = await client(mgmt.a.key, method, path);
      expectOpenAIError(r, 404);
      expect(r.status).toBe(404);
    }
    expect((await client(mgmt.a.key, 'GET', '/v1/subprocessor-notices')).body.data.some((n: any) => n.change_id === changeId)).toBe(false);
    expect((await noticeOf(b.accountId)).status).toBe('pending');
    expect(await noticeOf(a.accountId)).toBeUndefined();
    // No way to name another account: an account id in the body is an unknown field.
    const named = await client(mgmt.a.key, 'POST', `/v1/subprocessor-notices/${changeId}/accept`, { accountId: b.accountId });
    expect(named.status).toBe(400);
    expect((await noticeOf(b.accountId)).status).toBe('pending');
  });

  it('bounds the body: reason length and control characters, unknown fields, size, bad JSON; the path decides', async () => {
    const path = `/v1/subprocessor-notices/${changeId}/object`;
    for (const bad of [{ reason: 'z'.repeat(501) }, { reason: 'new\nline' }, { reason: 'ok' }, { reason: 42 }, { decided_by: 'staff' }, '{"reason":']) {
      expectOpenAIError(await client(mgmt.b.key, 'POST', path, bad), 400);
    }
    expectOpenAIError(await client(mgmt.b.key, 'POST', path, { reason: 'x'.repeat(8000) }), 413);
    expect((await noticeOf(b.accountId)).status).toBe('pending');
    // A decision in the body does not override the path's.
    const r = await client(mgmt.b.key, 'POST', `/v1/subprocessor-notices/${changeId}/accept`, { decision: 'object' });
    expect(r.status).toBe(200);
    expect(r.body.data.status).toBe('accepted');
    expect((await noticeOf(b.accountId)).decided_by).toBe(`account:${mgmt.b.keyId}`);
    expectOpenAIError(await client(mgmt.b.key, 'POST', `/v1/subprocessor-notices/${changeId}/maybe`), 404);
  });

  it('answers ids that are not UUIDs with 404 and refuses inference keys', async () => {
    for (const id of ['not-a-uuid', "'%20OR%201=1", '0'.repeat(500), `${changeId.slice(0, -1)}x`]) {
      const r = await client(mgmt.b.key, 'GET', `/v1/subprocessor-notices/${id}`);
      expectOpenAIError(r, 404);
    }
    const r = await client(b.key, 'POST', `/v1/subprocessor-notices/${changeId}/object`);
    expectOpenAIError(r, 403);
    expect(r.body.error.code).toBe('management_key_required');
    expect((await noticeOf(b.accountId)).status).toBe('accepted');
    expect((await client('sk-not-a-key', 'GET', '/v1/subprocessor-notices')).status).toBe(401);
  });
});
