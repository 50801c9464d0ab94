import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminApp } from '../../src/admin/app';
import { systemClock } from '../../src/clock';
import { dunningService } from '../../src/invoicing/dunning.service';
import { staffService } from '../../src/staff/staff.service';
import { silentLogger, testConfig, testDb } from '../helpers/env';
import { postpaidInvoiceFactory } from '../helpers/postpaidInvoice';
import { serve } from '../helpers/servers';

/**
 * Pausing and resuming an account's dunning (docs/collections.md, "Dunning"):
 * only billing staff and admins; the reason is bounded (3-500 characters, no
 * control characters) and the account id must be one; every refusal is a
 * problem document and writes nothing; who paused is the token, never the body.
 */
const config = testConfig();
const db = testDb(config);
let base: string;
let close: () => Promise<void>;
const tokens: Record<string, string> = {};
let inv: { accountId: string; invoiceId: string };

beforeAll(async () => {
  inv = await (await postpaidInvoiceFactory(db, config))('Dunning Bounds Co');
  ({ url: base, close } = await serve(createAdminApp({ db, billing: config.billing, config, clock: systemClock, logger: silentLogger, readiness: {}, readyCheckTimeoutMs: 1000 })));
  for (const role of ['billing', 'compliance', 'admin'] as const) tokens[role] = (await staffService({ db }).createStaffToken({ role })).token;
});
afterAll(async () => {
  await close();
  await db.destroy();
});

async function call(role: string | null, method: 'GET' | 'POST', path: string, body?: unknown, raw?: string) {
  const res = await fetch(base + path, {
    method,
    headers: { ...(role ? { authorization: `Bearer ${tokens[role]}` } : {}), ...(body === undefined && raw === undefined ? {} : { 'content-type': 'application/json' }) },
    body: raw ?? (body === undefined ? undefined : JSON.stringify(body)),
  });
  const text = await res.text();
  let parsed: any;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = text;
  }
  return { status: res.status, type: res.headers.get('content-type') ?? '', body: parsed, text };
}

const pauses = () => db('dunning_pauses').where({ account_id: inv.accountId });
const expectProblem = (r: Awaited<ReturnType<typeof call>>, status: number, detail?: RegExp) => {
  expect(r.status, r.text).toBe(status);
  expect(r.type).toContain('application/problem+json');
  expect(r.body).toMatchObject({ status, type: expect.any(String), title: expect.any(String), detail: expect.any(String) });
  if (detail) expect(r.body.detail).toMatch(detail);
  expect(r.text).not.toMatch(/\bat .*\.ts:\d+/);
};

describe('roles', () => {
  it('compliance staff cannot read, pause or resume dunning; no token is 401', async () => {
    expectProblem(await call('compliance', 'POST', `/billing/accounts/${inv.accountId}/dunning/pause`, { reason: 'compliance wants it paused' }), 403);
    expectProblem(await call('compliance', 'POST', `/billing/accounts/${inv.accountId}/dunning/resume`), 403);
    expectProblem(await call('compliance', 'GET', `/billing/accounts/${inv.accountId}/dunning`), 403);
    expectProblem(await call(null, 'POST', `/billing/accounts/${inv.accountId}/dunning/pause`, { reason: 'anonymous pause' }), 401);
    expectProblem(await call(null, 'GET', `/billing/accounts/${inv.accountId}/dunning`), 401);
    expect(await pauses()).toEqual([]);
  });

  it('an admin may pause; who paused is the token, not anything in the body', async () => {
    expectProblem(await call('admin', 'POST', `/billing/accounts/${inv.accountId}/dunning/pause`, { reason: 'spoofed', actor: 'cli:someone', pausedBy: 'x' }), 400, /unknown field/);
    const ok = await call('admin', 'POST', `/billing/accounts/${inv.accountId}/dunning/pause`, { reason: 'admin pause' });
    expect(ok.status).toBe(200);
    expect(ok.body.pause.pausedBy).toMatch(/^staff:[0-9a-f-]{36}$/);
    expect((await call('admin', 'POST', `/billing/accounts/${inv.accountId}/dunning/resume`)).body).toMatchObject({ resumed: true });
    await db('dunning_pauses').where({ account_id: inv.accountId }).delete();
  });
});

describe('the reason', () => {
  const bad: [string, unknown, RegExp][] = [
    ['missing', {}, /reason/],
    ['empty', { reason: '' }, /at least 3/],
    ['two characters', { reason: 'ab' }, /at least 3/],
    ['two characters padded with spaces', { reason: '   ab   ' }, /at least 3/],
    ['501 characters', { reason: 'r'.repeat(501) }, /at most 500/],
    ['a number', { reason: 12345 }, /reason/],
    ['null', { reason: null }, /reason/],
    ['an array', { reason: ['paused', 'twice'] }, /reason/],
    ['a NUL character', { reason: 'abc\u0000def' }, /control characters/],
    ['an escape sequence', { reason: 'abc\u001b[31mred' }, /control characters/],
  ];
  it.each(bad)('refuses a reason that is %s, with a problem document, and writes nothing', async (_what, body, detail) => {
    expectProblem(await call('billing', 'POST', `/billing/accounts/${inv.accountId}/dunning/pause`, body), 400, detail);
    expect(await pauses()).toEqual([]);
  });

  it('refuses a body that is not JSON, or too large, with a problem document', async () => {
    expectProblem(await call('billing', 'POST', `/billing/accounts/${inv.accountId}/dunning/pause`, undefined, '{"reason": "unterminated'), 400);
    const huge = await call('billing', 'POST', `/billing/accounts/${inv.accountId}/dunning/pause`, undefined, JSON.stringify({ reason: 'x'.repeat(2 * 1024 * 1024) }));
    expectProblem(huge, 413);
    expect(await pauses()).toEqual([]);
  });

  it('takes exactly 3 and exactly 500 characters (trimmed)', async () => {
    for (const reason of ['abc', 'r'.repeat(500)]) {
      const r = await call('billing', 'POST', `/billing/accounts/${inv.accountId}/dunning/pause`, { reason: `  ${reason}  ` });
      expect(r.status, r.text).toBe(200);
      expect(r.body.pause.reason).toBe(reason);
      expect((await call('billing', 'POST', `/billing/accounts/${inv.accountId}/dunning/resume`)).body.resumed).toBe(true);
    }
    expect((await pauses()).every((p) => p.resumed_at !== null)).toBe(true);
    await db('dunning_pauses').where({ account_id: inv.accountId }).delete();
  });

  it('the service refuses the same bounds (CLI and console go through it)', async () => {
    const s = dunningService({ db, clock: systemClock, config });
    await expect(s.pause({ accountId: inv.accountId, reason: 'no', actor: 'cli:test' })).rejects.toThrow(/at least 3/);
    await expect(s.pause({ accountId: inv.accountId, reason: 'x'.repeat(501), actor: 'cli:test' })).rejects.toThrow(/at most 500/);
    expect(await pauses()).toEqual([]);
  });
});

describe('the account id', () => {
  const malformed = ['not-a-uuid', "1'%20OR%20'1'%3D'1", `${randomUUID()}x`, 'a'.repeat(300), '%00', '..%2F..%2Fetc'];
  it.each(malformed)('refuses %j with a problem document (400) on every dunning route', async (id) => {
    expectProblem(await call('billing', 'GET', `/billing/accounts/${id}/dunning`), 400, /account id/);
    expectProblem(await call('billing', 'POST', `/billing/accounts/${id}/dunning/pause`, { reason: 'a valid reason' }), 400, /account id/);
    expectProblem(await call('billing', 'POST', `/billing/accounts/${id}/dunning/resume`), 400, /account id/);
  });

  it('answers 404 (problem) for an account that does not exist, and writes nothing', async () => {
    const unknown = randomUUID();
    expectProblem(await call('billing', 'GET', `/billing/accounts/${unknown}/dunning`), 404, /does not exist/);
    expectProblem(await call('billing', 'POST', `/billing/accounts/${unknown}/dunning/pause`, { reason: 'a valid reason' }), 404, /does not exist/);
    expectProblem(await call('billing', 'POST', `/billing/accounts/${unknown}/dunning/resume`), 404, /does not exist/);
    expect(await db('dunning_pauses').where({ account_id: unknown })).toEqual([]);
  });

  it('the dunning view is bounded to the latest 24 invoices and carries ids and amounts, not the customer', async () => {
    const r = await call('billing', 'GET', `/billing/accounts/${inv.accountId}/dunning`);
    expect(r.status).toBe(200);
    expect(r.body.invoices.length).toBeLessThanOrEqual(24);
    expect(r.text).not.toContain('ap@example.com');
  });
});
