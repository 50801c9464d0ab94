import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accountsService } from '../../src/accounts/accounts.service';
import { systemClock } from '../../src/clock';
import { staffService } from '../../src/staff/staff.service';
import type { StaffRole } from '../../src/staff/staff.rules';
import { dsrAdminServer, uniqueEmail, type DsrAdmin } from '../helpers/dsrStack';
import { testConfig, testDb } from '../helpers/env';

/**
 * Closing a processor-mode forward is a compliance decision: only staff with
 * the compliance role may do it, only for the request in the path, once, with
 * a bounded one-line reason; every refusal is problem JSON and changes nothing.
 */
const config = testConfig({ DATA_DIR: fs.mkdtempSync(path.join(os.tmpdir(), 'mixroute-pmc-sec-')) });
const db = testDb(config);
let admin: DsrAdmin;
const tokens = {} as Record<StaffRole, string>;

beforeAll(async () => {
  admin = await dsrAdminServer(db, config);
  for (const role of ['billing', 'compliance', 'admin'] as StaffRole[]) tokens[role] = (await staffService({ db }).createStaffToken({ role })).token;
});
afterAll(async () => {
  await admin.close();
  await db.destroy();
});

const as = (role: StaffRole | null, method: string, p: string, body?: unknown) =>
  admin.call(method, p, body, role ? { headers: { authorization: `Bearer ${tokens[role]}` } } : {});

/** Two forwarded requests to two customers. */
async function forwarded() {
  const a = await accountsService({ db, clock: systemClock }).createAccount({ name: `Close Sec ${randomUUID().slice(0, 8)}`, billingEmail: uniqueEmail('billing'), country: 'DE' });
  expect((await as('billing', 'POST', `/billing/accounts/${a.id}/privacy-contact`, { email: uniqueEmail('privacy'), reason: 'onboarding' })).status).toBe(200);
  const r = await as('compliance', 'POST', '/privacy/processor-dsr', { type: 'access', email: uniqueEmail('p'), customerAccountId: a.id });
  expect(r.status).toBe(201);
  return r.body.id as string;
}
const openState = async (id: string) => db('processor_forwards').where({ request_id: id }).first('closed_at', 'closed_by', 'close_reason');
const expectProblem = (r: { status: number; type: string; body: any }, status: number) => {
  expect(r.status).toBe(status);
  expect(r.type).toContain('application/problem+json');
  expect(JSON.stringify(r.body)).not.toMatch(/at .+\.ts:\d+/);
};

describe('closing a processor-mode forward: security', () => {
  it('only compliance staff and admins may close: no token 401, billing 403, nothing changes', async () => {
    const id = await forwarded();
    expectProblem(await as(null, 'POST', `/privacy/processor-dsr/${id}/close`, { reason: 'not allowed' }), 401);
    expectProblem(await as('billing', 'POST', `/privacy/processor-dsr/${id}/close`, { reason: 'not allowed' }), 403);
    expect(await openState(id)).toEqual({ closed_at: null, closed_by: null, close_reason: null });
    expect((await as('compliance', 'POST', `/privacy/processor-dsr/${id}/close`, { reason: 'customer answered' })).status).toBe(200);
    const other = await forwarded();
    expect((await as('admin', 'POST', `/privacy/processor-dsr/${other}/close`, { reason: 'handled by the DPO' })).status).toBe(200);
  });

  it('closes only the request in the path: another request id in the body is refused, the other forward stays open', async () => {
    const mine = await forwarded();
    const other = await forwarded();
    expectProblem(await as('compliance', 'POST', `/privacy/processor-dsr/${mine}/close`, { reason: 'handled', requestId: other }), 400);
    expect((await as('compliance', 'POST', `/privacy/processor-dsr/${mine}/close`, { reason: 'handled' })).status).toBe(200);
    expect((await openState(other))?.closed_at).toBeNull();
  });

  it('a request that does not exist, is not an id, or was never forwarded', async () => {
    expectProblem(await as('compliance', 'POST', `/privacy/processor-dsr/${randomUUID()}/close`, { reason: 'handled' }), 404);
    expectProblem(await as('compliance', 'POST', `/privacy/processor-dsr/not-a-uuid'%20OR%201=1/close`, { reason: 'handled' }), 404);
    expectProblem(await as('compliance', 'GET', `/privacy/processor-dsr/${randomUUID()}`), 404);
    const r = await as('compliance', 'POST', '/privacy/processor-dsr', { type: 'access', email: uniqueEmail('nn') });
    expect(r.body.outcome).toBe('not_named');
    expectProblem(await as('compliance', 'POST', `/privacy/processor-dsr/${r.body.id}/close`, { reason: 'handled' }), 409);
  });

  it('the reason is bounded: missing, too short, too long, control characters, not a string', async () => {
    const id = await forwarded();
    for (const body of [{}, { reason: '' }, { reason: 'ab' }, { reason: 'x'.repeat(501) }, { reason: 'line one\nline two' }, { reason: 'bell\u0007' }, { reason: 'esc \u001b[31m red' }, { reason: 'c1 \u009b' }, { reason: 42 }, { reason: ['a', 'b', 'c'] }]) {
      expectProblem(await as('compliance', 'POST', `/privacy/processor-dsr/${id}/close`, body), 400);
    }
    expect(await openState(id)).toEqual({ closed_at: null, closed_by: null, close_reason: null });
    const ok = await as('compliance', 'POST', `/privacy/processor-dsr/${id}/close`, { reason: 'x'.repeat(500) });
    expect(ok.status).toBe(200);
  });

  it('closing twice is a conflict and keeps the first close', async () => {
    const id = await forwarded();
    expect((await as('compliance', 'POST', `/privacy/processor-dsr/${id}/close`, { reason: 'first close' })).status).toBe(200);
    const results = await Promise.all([1, 2, 3].map(() => as('compliance', 'POST', `/privacy/processor-dsr/${id}/close`, { reason: 'second close' })));
    for (const r of results) expectProblem(r, 409);
    expect((await openState(id))?.close_reason).toBe('first close');
  });

  it('concurrent closes: exactly one wins', async () => {
    const id = await forwarded();
    const results = await Promise.all([1, 2, 3, 4].map((i) => as('compliance', 'POST', `/privacy/processor-dsr/${id}/close`, { reason: `close ${i}` })));
    expect(results.map((r) => r.status).sort()).toEqual([200, 409, 409, 409]);
  });

  it('a privacy contact change reason with control characters is refused and leaves no history', async () => {
    const a = await accountsService({ db, clock: systemClock }).createAccount({ name: `Contact Sec ${randomUUID().slice(0, 8)}`, billingEmail: uniqueEmail('billing'), country: 'DE' });
    expectProblem(await as('billing', 'POST', `/billing/accounts/${a.id}/privacy-contact`, { email: uniqueEmail('p'), reason: 'fake\nline' }), 400);
    expect(await db('account_privacy_contact_changes').where({ account_id: a.id })).toHaveLength(0);
  });
});
