import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { regionPolicyService } from '../../src/accounts/regionPolicy.service';
import { createAdminApp } from '../../src/admin/app';
import { systemClock } from '../../src/clock';
import { staffService } from '../../src/staff/staff.service';
import { silentLogger, testConfig, testDb } from '../helpers/env';
import { eventually } from '../helpers/eventually';
import { startFakeUpstream, type FakeUpstream } from '../helpers/fakeUpstream';
import { createCustomer, startTestGateway, UPSTREAM_KEY, type Customer } from '../helpers/gateway';
import { serve } from '../helpers/servers';

/**
 * Region policies against hostile input: staff cannot store a policy with
 * malformed codes, oversized lists or fields of their own choosing (nothing is
 * written, nothing audited), and a client cannot lift its account's policy
 * with any header or body field: the policy comes from the database with the
 * key, never from the request.
 */
const config = testConfig();
const db = testDb(config);
let gw: Awaited<ReturnType<typeof startTestGateway>>;
let usUp: FakeUpstream;
let customer: Customer;
let admin: string;
let closeAdmin: () => Promise<void>;
let token: string;

beforeAll(async () => {
  usUp = await startFakeUpstream({ apiKey: UPSTREAM_KEY });
  customer = await createCustomer(db, usUp.url);
  const p = await db('providers').where({ name: customer.provider }).first('id');
  await db('recipients').insert({ name: `recipient ${customer.provider}`, kind: 'model_provider', provider_id: p.id, countries: ['US'] }).onConflict('provider_id').merge(['countries']);
  await regionPolicyService({ db }).set({ accountId: customer.accountId, allow: 'EEA', reason: 'customer asked for EEA processing', actor: 'test' });
  gw = await startTestGateway({}, config);
  ({ url: admin, close: closeAdmin } = await serve(
    createAdminApp({ db, billing: config.billing, config, clock: systemClock, logger: silentLogger, readiness: {}, readyCheckTimeoutMs: 1000 }),
  ));
  token = (await staffService({ db }).createStaffToken({ role: 'admin', name: 'region policy bounds' })).token;
});

afterAll(async () => {
  await closeAdmin?.();
  await gw?.stop();
  await usUp?.close();
  await db.destroy();
});

async function setPolicy(accountId: string, body: unknown) {
  const res = await fetch(`${admin}/billing/accounts/${accountId}/region-policy`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as any };
}

describe('setting a region policy', () => {
  it('refuses malformed codes, oversized lists and unknown fields, writing and auditing nothing', async () => {
    const other = await createCustomer(db, usUp.url);
    const reason = 'customer asked for it';
    const letters = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';
    const sixtyOne = Array.from({ length: 61 }, (_, i) => `${letters[i % 26]}${letters[Math.floor(i / 26)]}`);
    const bodies: unknown[] = [
      { allow: 'DEU', reason },
      { allow: 'de-DE', reason },
      { allow: 'EEA,<script>', reason },
      { allow: "DE'; DROP TABLE accounts; --", reason },
      { allow: '', reason },
      { allow: ',,,', reason },
      { allow: 42, reason },
      { allow: { EEA: true }, reason },
      { allow: 'DE,'.repeat(200), reason },
      { allow: sixtyOne.join(','), reason },
      { allow: sixtyOne, reason },
      { allow: ['D'.repeat(11)], reason },
      { allow: 'EEA', reason: 'x' },
      { allow: 'EEA', reason: 'two\nlines' },
      { allow: 'EEA' },
      { allow: 'EEA', reason, label: 'Anything I like' },
      { allow: 'EEA', reason, allowedCountries: ['US'] },
    ];
    for (const body of bodies) {
      const r = await setPolicy(other.accountId, body);
      expect(r.status, JSON.stringify(body).slice(0, 80)).toBe(400);
      // The error echoes nothing long.
      expect(JSON.stringify(r.body).length).toBeLessThan(2_000);
    }
    expect(await db('account_region_policies').where({ account_id: other.accountId }).first()).toBeUndefined();
    expect(await db('register_changes').where({ entity_type: 'account_region_policy', entity_id: other.accountId })).toHaveLength(0);

    expect((await setPolicy('not-a-uuid', { allow: 'EEA', reason })).status).toBe(400);
    expect((await setPolicy(randomUUID(), { allow: 'EEA', reason })).status).toBe(404);
    // Sixty countries is the bound, not past it.
    expect((await setPolicy(other.accountId, { allow: sixtyOne.slice(0, 60), reason })).status).toBe(200);
  });
});

describe('the gateway', () => {
  it('lets no header or body field lift the account policy', async () => {
    await eventually(
      async () => {
        const r = await fetch(`${gw.url}/v1/chat/completions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${customer.key}`, 'content-type': 'application/json' },
          body: JSON.stringify({ model: customer.model, messages: [{ role: 'user', content: 'hi' }] }),
        });
        expect(r.status).toBe(403);
      },
      { timeoutMs: 15_000, intervalMs: 200, message: 'the US-only model to be refused' },
    );
    const attempts: { headers: Record<string, string>; body: Record<string, unknown> }[] = [
      { headers: { 'x-region-policy': 'none' }, body: {} },
      { headers: { 'x-mixroute-region-policy': 'off', 'x-allowed-countries': 'US' }, body: {} },
      { headers: { 'x-mixroute-provider': customer.provider, 'x-forwarded-for': '8.8.8.8' }, body: {} },
      { headers: {}, body: { region_policy: null } },
      { headers: {}, body: { allowed_countries: ['US'], allowedCountries: ['US'] } },
      { headers: {}, body: { provider: customer.provider, route: 0, fallbacks: [] } },
      { headers: {}, body: { metadata: { region: 'US', region_policy: 'none' }, user: 'US' } },
      { headers: {}, body: { stream: true } },
    ];
    const before = usUp.requests.length;
    for (const a of attempts) {
      const r = await fetch(`${gw.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${customer.key}`, 'content-type': 'application/json', ...a.headers },
        body: JSON.stringify({ model: customer.model, messages: [{ role: 'user', content: 'hi' }], ...a.body }),
      });
      const body = (await r.json()) as any;
      expect(r.status, JSON.stringify(a)).toBe(403);
      expect(body.error.code).toBe('region_policy_no_route');
    }
    expect(usUp.requests.length).toBe(before);
  });
});
