import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminApp } from '../../src/admin/app';
import { systemClock } from '../../src/clock';
import { staffService } from '../../src/staff/staff.service';
import type { StaffRole } from '../../src/staff/staff.rules';
import { silentLogger, testConfig, testDb } from '../helpers/env';
import { serve } from '../helpers/servers';

/**
 * The register's boundary: only compliance and admin tokens read or change
 * it (billing is refused, reads too); inputs are bounded (country codes,
 * list sizes, reason length, unknown fields, real dates); a refused change
 * writes nothing, neither the entry nor a change-log row.
 */
const config = testConfig();
const db = testDb(config);
const tag = randomUUID().slice(0, 8);
let admin: string;
let close: () => Promise<void>;
const tokens = {} as Record<StaffRole, string>;
let recipientId: string;

beforeAll(async () => {
  ({ url: admin, close } = await serve(createAdminApp({ db, billing: config.billing, config, clock: systemClock, logger: silentLogger, readiness: {}, readyCheckTimeoutMs: 1000 })));
  for (const role of ['billing', 'compliance', 'admin'] as const) tokens[role] = (await staffService({ db }).createStaffToken({ role })).token;
  const r = await call(tokens.admin, 'POST', '/privacy/register/recipients', { kind: 'payment_processor', name: `Payments ${tag}`, reason: 'initial register' });
  expect(r.status).toBe(201);
  recipientId = r.body.id;
});
afterAll(async () => {
  await close?.();
  await db.destroy();
});

async function call(token: string, method: 'GET' | 'POST', path: string, body?: unknown) {
  const res = await fetch(admin + path, { method, headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { body: JSON.stringify(body) } : {}) });
  return { status: res.status, contentType: res.headers.get('content-type') ?? '', body: (await res.json()) as any };
}
const changeCount = async () => Number((await db('register_changes').where({ entity_id: recipientId }).count('* as n').first())!.n);
// Only this file's recipients (by its tag): other files add theirs at the same time.
const recipientCount = async () => Number((await db('recipients').whereLike('name', `%${tag}%`).count('* as n').first())!.n);

const good = { kind: 'other', name: `Other ${tag}`, reason: 'initial register' };

describe('register: who', () => {
  it('refuses a billing token on every write and read, and nothing changes', async () => {
    const before = await recipientCount();
    for (const [method, path, body] of [
      ['POST', '/privacy/register/recipients', good],
      ['POST', `/privacy/register/recipients/${recipientId}`, { role: 'processor', reason: 'billing tries' }],
      ['POST', '/privacy/register/activities', { key: `x_${tag}`, purpose: 'xyz', legalBasis: 'contract', dataSubjectCategories: ['a'], dataCategories: ['b'], systems: ['c'], reason: 'billing tries' }],
      ['GET', '/privacy/register/recipients', undefined],
      ['GET', '/privacy/register/changes', undefined],
    ] as const) {
      const r = await call(tokens.billing, method, path, body);
      expect(r.status, `${method} ${path}`).toBe(403);
      expect(r.contentType).toContain('application/problem+json');
    }
    expect(await recipientCount()).toBe(before);
    expect(await changeCount()).toBe(1);
  });

  it('refuses no token', async () => {
    expect((await fetch(`${admin}/privacy/register/completeness`)).status).toBe(401);
  });
});

describe('register: what', () => {
  const refused = async (path: string, body: unknown, field: string) => {
    const r = await call(tokens.compliance, 'POST', path, body);
    expect(r.status, JSON.stringify(body).slice(0, 200)).toBe(400);
    expect(r.contentType).toContain('application/problem+json');
    expect(JSON.stringify(r.body)).toContain(field);
  };

  it('refuses bad country codes, oversized lists and reasons, unknown fields and unreal dates, writing nothing', async () => {
    const before = await recipientCount();
    const upd = `/privacy/register/recipients/${recipientId}`;
    for (const countries of [['de'], ['DEU'], ['D1'], [' DE'], ['DE', 'DE'], 'DE', Array.from({ length: 51 }, (_, i) => String.fromCharCode(65 + Math.floor(i / 26), 65 + (i % 26)))]) {
      await refused(upd, { countries, reason: 'bad countries' }, 'countries');
    }
    await refused(upd, { reason: 'x'.repeat(501) }, 'reason');
    await refused(upd, { role: 'processor', reason: 'no' }, 'reason');
    await refused(upd, { role: 'processor' }, 'reason');
    await refused(upd, { role: 'processor', reason: 'line one\nline two' }, 'reason');
    await refused(upd, { role: 'processor', reason: 'fine reason', providerId: randomUUID() }, 'unknown field');
    await refused(upd, { role: 'owner', reason: 'fine reason' }, 'role');
    await refused(upd, { transferMechanism: 'standard_contractual_clauses', sccDate: '2021-02-30', reason: 'fine reason' }, 'sccDate');
    await refused(upd, { agreementSignedOn: '2021-6-4', reason: 'fine reason' }, 'agreementSignedOn');
    await refused(upd, { agreementRef: 'x'.repeat(201), reason: 'fine reason' }, 'agreementRef');
    await refused(upd, { reason: 'nothing to change' }, 'nothing to change');
    await refused('/privacy/register/recipients', { ...good, kind: 'model_provider' }, 'provider');
    await refused('/privacy/register/recipients', { ...good, name: 'x'.repeat(201) }, 'name');
    const activity = { key: `a_${tag}`, purpose: 'Purpose', legalBasis: 'contract', dataSubjectCategories: ['users'], dataCategories: ['email'], systems: ['gateway'], reason: 'initial register' };
    await refused('/privacy/register/activities', { ...activity, systems: Array.from({ length: 21 }, (_, i) => `s${i}`) }, 'systems');
    await refused('/privacy/register/activities', { ...activity, dataCategories: Array.from({ length: 31 }, (_, i) => `d${i}`) }, 'dataCategories');
    await refused('/privacy/register/activities', { ...activity, dataSubjectCategories: [] }, 'dataSubjectCategories');
    await refused('/privacy/register/activities', { ...activity, systems: ['x'.repeat(101)] }, 'systems');
    await refused('/privacy/register/activities', { ...activity, legalBasis: 'because' }, 'legalBasis');
    await refused('/privacy/register/activities', { ...activity, key: 'Robert); DROP TABLE recipients;--' }, 'key');
    await refused('/privacy/register/activities', { ...activity, extra: 1 }, 'unknown field');
    expect(await recipientCount()).toBe(before);
    expect(await changeCount()).toBe(1);
    expect(await db('processing_activities').where({ key: `a_${tag}` }).first()).toBeUndefined();
  });

  it('answers an unknown or malformed id with 404, and a bad page cursor with 400', async () => {
    expect((await call(tokens.compliance, 'GET', `/privacy/register/recipients/${randomUUID()}`)).status).toBe(404);
    expect((await call(tokens.compliance, 'GET', `/privacy/register/activities/not-an-id`)).status).toBe(404);
    expect((await call(tokens.compliance, 'POST', `/privacy/register/recipients/not-an-id`, { role: 'processor', reason: 'fine reason' })).status).toBe(404);
    expect((await call(tokens.compliance, 'GET', `/privacy/register/changes?before=abc`)).status).toBe(400);
    expect((await call(tokens.compliance, 'GET', `/privacy/register/changes?limit=100000`)).status).toBe(400);
  });
});
