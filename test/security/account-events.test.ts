import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminApp } from '../../src/admin/app';
import { systemClock } from '../../src/clock';
import { accountsService } from '../../src/accounts/accounts.service';
import { recordTopUp } from '../../src/ledger/ledger.service';
import { Money } from '../../src/shared/money.rules';
import { staffService } from '../../src/staff/staff.service';
import { silentLogger, testConfig, testDb } from '../helpers/env';
import { serve } from '../helpers/servers';

/**
 * Attacks on the account alert settings and events of the admin API (issue
 * 22): a role that is not billing's, thresholds the columns would round or
 * that would make every settlement do unbounded work, unknown fields, and a
 * crafted page cursor. And what an event may carry: a hostile account name
 * and billing address never reach an event's data or an email's text.
 */
const config = testConfig();
const db = testDb(config);
const ops = accountsService({ db, clock: systemClock });
let base: string;
let close: () => Promise<void>;
let billingToken: string;
let complianceToken: string;
let accountId: string;
const hostileName = `<script>alert(1)</script> Evil Corp ${randomUUID().slice(0, 6)}`;
const hostileEmail = `victim-${randomUUID().slice(0, 6)}@example.test`;

beforeAll(async () => {
  const app = createAdminApp({ db, billing: config.billing, config, clock: systemClock, logger: silentLogger, readiness: {}, readyCheckTimeoutMs: 1000 });
  ({ url: base, close } = await serve(app));
  billingToken = (await staffService({ db }).createStaffToken({ role: 'billing' })).token;
  complianceToken = (await staffService({ db }).createStaffToken({ role: 'compliance' })).token;
  accountId = (await ops.createAccount({ name: hostileName, billingEmail: hostileEmail })).id;
});
afterAll(async () => {
  await close();
  await db.destroy();
});

async function call(method: 'GET' | 'POST', path: string, body?: unknown, token = billingToken) {
  const res = await fetch(base + path, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, contentType: res.headers.get('content-type') ?? '', body: text ? JSON.parse(text) : undefined };
}

const settingsRow = () => db('account_alert_settings').where({ account_id: accountId }).first();

describe('alert settings through the admin API', () => {
  it('a compliance token can neither read nor change them', async () => {
    expect((await call('GET', `/billing/accounts/${accountId}/alerts`, undefined, complianceToken)).status).toBe(403);
    expect((await call('POST', `/billing/accounts/${accountId}/alerts`, { emailAlerts: false }, complianceToken)).status).toBe(403);
    expect((await call('GET', `/billing/accounts/${accountId}/events`, undefined, complianceToken)).status).toBe(403);
    expect(await settingsRow()).toBeUndefined();
  });

  it('refuses more than five thresholds, huge lists, unbounded or imprecise amounts and unknown fields, with a problem', async () => {
    for (const body of [
      { lowBalanceThresholds: ['1', '2', '3', '4', '5', '6'] },
      { lowBalanceThresholds: Array.from({ length: 10_000 }, (_, i) => String(i + 1)) },
      { lowBalanceThresholds: ['99999999999999'] },
      { lowBalanceThresholds: ['0.0000000000001'] },
      { lowBalanceThresholds: ['0'] },
      { lowBalanceThresholds: ['1e3'] },
      { lowBalanceThresholds: [5] },
      { lowBalanceThresholds: '5' },
      { emailAlerts: 'yes' },
      { emailAlerts: false, recipient: 'attacker@example.test' },
      {},
    ]) {
      const res = await call('POST', `/billing/accounts/${accountId}/alerts`, body);
      expect(res.status, JSON.stringify(body).slice(0, 80)).toBe(400);
      expect(res.contentType).toContain('application/problem+json');
      expect(JSON.stringify(res.body)).not.toMatch(/at .*\.ts:\d+/);
    }
    expect(await settingsRow()).toBeUndefined();
  });

  it('an unknown account is a 404 and a malformed id a 400, not a database error', async () => {
    expect((await call('POST', `/billing/accounts/${randomUUID()}/alerts`, { emailAlerts: false })).status).toBe(404);
    expect((await call('GET', `/billing/accounts/not-a-uuid/alerts`)).status).toBe(400);
  });

  it('a crafted page cursor or page size is refused', async () => {
    for (const q of ["before=2026-01-01T00:00:00.000000Z_x' OR 1=1--", 'before=yesterday', 'limit=100000', 'type=balance.stolen']) {
      const res = await call('GET', `/billing/accounts/${accountId}/events?${q}`);
      expect(res.status, q).toBe(400);
      expect(res.contentType).toContain('application/problem+json');
    }
  });
});

describe('what an event carries', () => {
  it('ids, amounts and links only: neither the account name nor the billing address, in the event or its email text', async () => {
    expect((await call('POST', `/billing/accounts/${accountId}/alerts`, { lowBalanceThresholds: ['5'] })).status).toBe(200);
    await recordTopUp(db, { paymentId: randomUUID(), provider: 'manual', accountId, amount: '10', currency: 'USD', kind: 'topup', actor: 'test' }, { overdraftAllowance: new Money(0) });
    const res = await call('GET', `/billing/accounts/${accountId}/events`);
    expect(res.status).toBe(200);
    expect(res.body.items.map((e: { type: string }) => e.type).sort()).toEqual(['balance.recovered', 'topup.succeeded']);
    const mails = await db('notification_outbox').whereIn('idempotency_key', res.body.items.map((e: { id: string }) => `account-event:${e.id}`));
    expect(mails).toHaveLength(2);
    const carried = JSON.stringify(res.body) + JSON.stringify(mails.map((m) => [m.subject, m.body]));
    expect(carried).not.toContain(hostileEmail);
    expect(carried).not.toContain('Evil Corp');
    expect(mails.every((m) => m.recipient === hostileEmail)).toBe(true);
  });
});
