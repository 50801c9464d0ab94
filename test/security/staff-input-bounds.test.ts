import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminApp } from '../../src/admin/app';
import { adminRoutes } from '../../src/admin/routes';
import { systemClock } from '../../src/clock';
import { accountsService } from '../../src/accounts/accounts.service';
import { silentLogger, testConfig, testDb } from '../helpers/env';
import { serve } from '../helpers/servers';
import { staffService } from '../../src/staff/staff.service';

/**
 * Attacks on what staff type in (issue 17, item 10): amounts the NUMERIC(24,12)
 * columns would round or overflow, and list routes asked for a whole table.
 * A staff token is taken as compromised or careless; the server must bound both.
 */
const config = testConfig();
const db = testDb(config);
const ops = accountsService({ db, clock: systemClock });
let base: string;
let close: () => Promise<void>;
let adminToken: string;
let accountId: string;

beforeAll(async () => {
  const app = createAdminApp({ db, billing: config.billing, config, clock: systemClock, logger: silentLogger, readiness: {}, readyCheckTimeoutMs: 1000 });
  ({ url: base, close } = await serve(app));
  adminToken = (await staffService({ db }).createStaffToken({ role: 'admin' })).token;
  accountId = (await ops.createAccount({ name: 'Bounds Co' })).id;
});
afterAll(async () => {
  await close();
  await db.destroy();
});

async function call(method: 'GET' | 'POST', path: string, body?: unknown) {
  const res = await fetch(base + path, {
    method,
    headers: { authorization: `Bearer ${adminToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, contentType: res.headers.get('content-type') ?? '', body: text ? JSON.parse(text) : undefined };
}

describe('staff amounts', () => {
  it('refuses a top-up with more than 12 decimals instead of rounding it away', async () => {
    const res = await call('POST', '/billing/topups', { accountId, amount: '0.0000000000001', reference: 'bounds-13-decimals' });
    expect(res.status).toBe(400);
    expect(res.contentType).toContain('application/problem+json');
    expect(JSON.stringify(res.body)).toContain('at most 12 decimal places');
    const rows = await db('ledger_entries').where({ account_id: accountId }).count<{ count: string | number }[]>('* as count');
    expect(Number(rows[0]?.count)).toBe(0);
  });

  it('refuses amounts above the staff bound with a problem, not a database overflow', async () => {
    for (const [path, body] of [
      ['/billing/topups', { accountId, amount: '99999999999999', reference: 'bounds-huge-topup' }],
      ['/billing/adjustments', { accountId, amount: '-99999999999999', reference: 'bounds-huge-adjustment', reason: 'attack' }],
      ['/billing/accounts', { name: 'Huge Limit', plan: 'postpaid', creditLimit: '5000000000' }],
    ] as const) {
      const res = await call('POST', path, body);
      expect(res.status, path).toBe(400);
      expect(JSON.stringify(res.body), path).toContain('must be at most 1000000000');
    }
    const balance = await db('account_balances').where({ account_id: accountId }).first();
    expect(balance?.balance ?? '0').toMatch(/^0(\.0+)?$/);
  });

  it('still takes an amount at the bound with 12 decimals', async () => {
    const res = await call('POST', '/billing/adjustments', { accountId, amount: '1000000000.000000000000', reference: 'bounds-at-limit', reason: 'largest allowed' });
    expect(res.status).toBe(201);
  });
});

describe('list routes', () => {
  const lists = adminRoutes.filter((r) => r.method === 'get' && /(^|\/)(accounts|keys|providers|models|invoices|tax-rates|reconciliation-reports|dsr|runs|legal-holds)$/.test(r.path));

  it('covers every list route', () => {
    expect(lists.map((r) => r.path).sort()).toEqual(
      [
        '/billing/accounts',
        '/billing/accounts/:id/keys',
        '/billing/invoices',
        '/billing/models',
        '/billing/providers',
        '/billing/reconciliation-reports',
        '/billing/tax-rates',
        '/privacy/dsr',
        '/privacy/legal-holds',
        '/privacy/retention/runs',
      ].sort(),
    );
  });

  it('refuses a page larger than 500 on every list route', async () => {
    for (const route of lists) {
      const path = route.path.replace(':id', accountId);
      const res = await call('GET', `${path}?limit=100000`);
      expect(res.status, path).toBe(400);
      expect(res.contentType, path).toContain('application/problem+json');
    }
  });

  it('pages through providers and an account\'s keys with limit and after', async () => {
    await db('providers').insert([
      { name: 'bounds-a', base_url: 'https://a.example', kind: 'openai' },
      { name: 'bounds-b', base_url: 'https://b.example', kind: 'openai' },
    ]);
    const first = await call('GET', '/billing/providers?limit=1&after=bounds-');
    expect(first.status).toBe(200);
    expect(first.body.map((p: { name: string }) => p.name)).toEqual(['bounds-a']);
    const second = await call('GET', '/billing/providers?limit=1&after=bounds-a');
    expect(second.body.map((p: { name: string }) => p.name)).toEqual(['bounds-b']);

    for (const name of ['k1', 'k2', 'k3']) await ops.createKey({ accountId, name });
    const page1 = await call('GET', `/billing/accounts/${accountId}/keys?limit=2`);
    expect(page1.body).toHaveLength(2);
    const page2 = await call('GET', `/billing/accounts/${accountId}/keys?limit=2&after=${page1.body[1].id}`);
    expect(page2.body.map((k: { name: string }) => k.name)).toEqual(['k3']);
  });

  it('refuses a cursor that names nothing (or another account\'s key) instead of answering an empty page', async () => {
    // An empty page reads as "no more": a script paging with a stale or foreign cursor would stop, believing it saw everything.
    const other = (await ops.createAccount({ name: 'Other Co' })).id;
    const foreignKey = (await ops.createKey({ accountId: other, name: 'theirs' })).id;
    const missing = randomUUID();
    for (const [path, field] of [
      [`/privacy/dsr?after=${missing}`, 'after'],
      [`/billing/accounts/${accountId}/keys?after=${missing}`, 'after'],
      [`/billing/accounts/${accountId}/keys?after=${foreignKey}`, 'after'],
      [`/privacy/retention/runs?before=${missing}`, 'before'],
      [`/privacy/legal-holds?before=${missing}`, 'before'],
    ] as const) {
      const res = await call('GET', path);
      expect(res.status, path).toBe(400);
      expect(res.contentType, path).toContain('application/problem+json');
      expect(res.body.errors.map((e: { field: string }) => e.field), path).toEqual([field]);
    }
    // The owner's own cursor still pages.
    expect((await call('GET', `/billing/accounts/${other}/keys?after=${foreignKey}`)).status).toBe(200);
  });
});
