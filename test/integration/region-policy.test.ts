import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accountsService } from '../../src/accounts/accounts.service';
import { regionPolicyService } from '../../src/accounts/regionPolicy.service';
import { createAdminApp } from '../../src/admin/app';
import { systemClock } from '../../src/clock';
import { Money } from '../../src/shared/money.rules';
import { staffService } from '../../src/staff/staff.service';
import { runCli, runCliJson } from '../helpers/cli';
import { silentLogger, testConfig, testDb, testEnv } from '../helpers/env';
import { eventually } from '../helpers/eventually';
import type { FakeAnthropic } from '../helpers/fakeAnthropic';
import { startFakeUpstream, type FakeUpstream } from '../helpers/fakeUpstream';
import { createCustomer, startAnthropicUpstreams, startTestGateway, UPSTREAM_KEY, UPSTREAM_KEY_ENV, type Customer } from '../helpers/gateway';
import { serve } from '../helpers/servers';

/**
 * Region policies end to end, with a real gateway, fake upstreams, the real
 * admin API and PostgreSQL. The model's primary provider processes in the US,
 * its fallback in Germany (recipients rows, as the register holds them); an
 * account limited to the EEA reaches only the German one, also when it fails,
 * a model with only US routes is refused with region_policy_no_route (metered,
 * nothing forwarded), an account without a policy uses every route, and a
 * change made through the admin API applies within the key cache's TTL.
 */
const config = testConfig();
const db = testDb(config);
const ops = accountsService({ db, clock: systemClock });
let gw: Awaited<ReturnType<typeof startTestGateway>>;
let usUp: FakeUpstream;
let deUp: FakeUpstream;
let anthropicUp: FakeAnthropic;
let openaiUp: FakeUpstream;
/** Primary in the US, fallback in DE. */
let eea: Customer;
/** A model of its own whose only route is in the US. */
let usOnly: Customer;
/** An Anthropic model whose provider is in the US. */
let claude: string;
let admin: string;
let closeAdmin: () => Promise<void>;
let billing: { id: string; token: string };
let compliance: string;

/** The key cache's promise (at most 5 s) and a routing refresh, with room for a loaded machine. */
const PROPAGATION = { timeoutMs: 15_000, intervalMs: 200 };

/** The provider's register entry with its countries of processing (what the routing table reads). */
async function placeProvider(provider: string, countries: string[]) {
  const p = await db('providers').where({ name: provider }).first('id');
  await db('recipients')
    .insert({ name: `recipient ${provider}`, kind: 'model_provider', provider_id: p.id, countries })
    .onConflict('provider_id')
    .merge(['countries']);
}

/** Another account (postpaid, so it needs no credit) with a key, for models other customers set up. */
async function anotherAccount() {
  const tag = randomUUID().slice(0, 8);
  const account = await ops.createAccount({ name: `Other ${tag}`, plan: 'postpaid', creditLimit: '100' });
  const user = await ops.createUser({ accountId: account.id, name: `User ${tag}`, email: `other-${tag}@example.com` });
  const key = await ops.createKey({ accountId: account.id, userId: user.id });
  return { accountId: account.id, key: key.key };
}

beforeAll(async () => {
  usUp = await startFakeUpstream({ apiKey: UPSTREAM_KEY });
  deUp = await startFakeUpstream({ apiKey: UPSTREAM_KEY });
  eea = await createCustomer(db, usUp.url, { fallbackUrls: [deUp.url] });
  await placeProvider(eea.provider, ['US']);
  await placeProvider(`${eea.provider}-fb0`, ['DE']);
  usOnly = await createCustomer(db, usUp.url);
  await placeProvider(usOnly.provider, ['US', 'DE']);
  const up = await startAnthropicUpstreams(db);
  ({ anthropicUp, openaiUp } = up);
  claude = `claude-${up.tag}`;
  await up.ops.addModel({ name: claude, provider: up.provider.name, upstreamModel: 'claude-fake-1', inputPerMtok: '3', outputPerMtok: '15', effectiveFrom: '2020-01-01T00:00:00Z' });
  await placeProvider(up.provider.name, ['US']);

  // The policies are set before the keys are first used, so the gateway loads them with the keys.
  const policies = regionPolicyService({ db });
  await policies.set({ accountId: eea.accountId, allow: 'EEA', reason: 'customer asked for EEA processing', actor: 'test' });
  await policies.set({ accountId: usOnly.accountId, allow: 'eea', reason: 'customer asked for EEA processing', actor: 'test' });

  gw = await startTestGateway({}, config, { [UPSTREAM_KEY_ENV]: UPSTREAM_KEY });
  const app = createAdminApp({ db, billing: config.billing, config, clock: systemClock, logger: silentLogger, readiness: {}, readyCheckTimeoutMs: 1000 });
  ({ url: admin, close: closeAdmin } = await serve(app));
  const t = await staffService({ db }).createStaffToken({ role: 'billing', name: 'region policies' });
  billing = { id: t.id, token: t.token };
  compliance = (await staffService({ db }).createStaffToken({ role: 'compliance', name: 'region policies' })).token;
});

afterAll(async () => {
  await closeAdmin?.();
  await gw?.stop();
  for (const u of [usUp, deUp, openaiUp]) await u?.close();
  await anthropicUp?.close();
  await db.destroy();
});

async function staff(method: 'get' | 'post' | 'delete', path: string, body?: unknown, token = billing.token) {
  const res = await fetch(admin + path, {
    method: method.toUpperCase(),
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, body: (await res.json()) as any };
}

async function gateway(path: string, key: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(gw.url + path, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as any, requestId: res.headers.get('x-request-id') };
}

const chat = (key: string, model: string) => gateway('/v1/chat/completions', key, { model, max_tokens: 5, messages: [{ role: 'user', content: 'hello' }] });

async function usageOf(requestId: string | null) {
  await gw.batcher.flush();
  return db('usage_events').where({ request_id: requestId }).first('status_code', 'error_type', 'cost', 'endpoint', 'account_id', 'provider', 'input_tokens', 'output_tokens');
}

describe('region policies at the gateway', () => {
  it('routes an EEA-limited account only to the DE fallback, never the US primary, also when the DE route fails', async () => {
    const usStart = usUp.requests.length;
    // The routing table picks up the register's countries at its next refresh.
    const served = await eventually(
      async () => {
        const r = await chat(eea.key, eea.model);
        expect(r.status).toBe(200);
        return r;
      },
      { ...PROPAGATION, message: 'the EEA account to be served by the DE route' },
    );
    expect(served.body.choices[0].message.content).toBeTruthy();
    expect(deUp.requests.length).toBeGreaterThan(0);
    expect((await usageOf(served.requestId)).provider).toBe(`${eea.provider}-fb0`);

    // DE fails: the answer is that failure; the US route is never tried.
    const deBefore = deUp.requests.length;
    deUp.enqueue({ kind: 'error', status: 500 });
    const failed = await chat(eea.key, eea.model);
    expect(failed.status).toBe(502);
    expect(failed.body.error.code).not.toBe('region_policy_no_route');
    expect(deUp.requests.length).toBe(deBefore + 1);
    expect(usUp.requests.length).toBe(usStart);
  });

  it('refuses a model with no route in the region with region_policy_no_route, forwards nothing, and meters the refusal', async () => {
    const before = usUp.requests.length;
    const refused = await eventually(
      async () => {
        const r = await chat(usOnly.key, usOnly.model);
        expect(r.status).toBe(403);
        return r;
      },
      { ...PROPAGATION, message: 'the US-only model to be refused' },
    );
    expect(refused.body.error).toMatchObject({ type: 'request_forbidden', code: 'region_policy_no_route', param: null });
    expect(refused.body.error.message).toContain('region policy (EEA)');
    expect(refused.body.error.message).toContain(usOnly.model);
    // A provider processing in US and DE is not within the EEA: every country must be.
    expect(usUp.requests.length).toBe(before);

    const row = await usageOf(refused.requestId);
    expect(row).toMatchObject({ status_code: 403, error_type: 'region_policy_no_route', endpoint: 'chat.completions', account_id: usOnly.accountId, input_tokens: 0, output_tokens: 0 });
    expect(new Money(row.cost).isZero()).toBe(true);

    // The Anthropic routes refuse it in Anthropic's shape, translated chat as OpenAI's; nothing reaches the provider.
    const anthropicBefore = anthropicUp.requests.length;
    const messages = await gateway('/v1/messages', usOnly.key, { model: claude, max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] }, { 'anthropic-version': '2023-06-01' });
    expect(messages.status).toBe(403);
    expect(messages.body).toMatchObject({ type: 'error', error: { type: 'permission_error' } });
    expect(messages.body.error.message).toContain('region policy (EEA)');
    expect((await usageOf(messages.requestId)).error_type).toBe('region_policy_no_route');
    const translated = await chat(usOnly.key, claude);
    expect(translated.status).toBe(403);
    expect(translated.body.error.code).toBe('region_policy_no_route');
    const counted = await gateway('/v1/messages/count_tokens', usOnly.key, { model: claude, messages: [{ role: 'user', content: 'hi' }] }, { 'anthropic-version': '2023-06-01' });
    expect(counted.status).toBe(403);
    expect(anthropicUp.requests.length).toBe(anthropicBefore);
  });

  it('lets an account without a policy use every route, and applies a policy set and removed through the admin API within the key cache TTL', async () => {
    const other = await anotherAccount();
    const usBefore = usUp.requests.length;
    const free = await eventually(
      async () => {
        const r = await chat(other.key, eea.model);
        expect(r.status).toBe(200);
        return r;
      },
      { ...PROPAGATION, message: 'the account without a policy to be served' },
    );
    // The primary (US) serves it.
    expect(usUp.requests.length).toBe(usBefore + 1);
    expect((await usageOf(free.requestId)).provider).toBe(eea.provider);
    expect((await chat(other.key, usOnly.model)).status).toBe(200);

    // Compliance staff may read a policy, not set one.
    expect((await staff('get', `/billing/accounts/${other.accountId}/region-policy`, undefined, compliance)).body).toMatchObject({ policy: null, changes: [] });
    expect((await staff('post', `/billing/accounts/${other.accountId}/region-policy`, { allow: 'EEA', reason: 'x'.repeat(5) }, compliance)).status).toBe(403);

    const set = await staff('post', `/billing/accounts/${other.accountId}/region-policy`, { allow: 'DE,FR', reason: 'customer DPA requires DE or FR' });
    expect(set.status).toBe(200);
    expect(set.body).toMatchObject({ changed: true, policy: { allowedCountries: ['DE', 'FR'], label: null } });
    const refused = await eventually(
      async () => {
        const r = await chat(other.key, usOnly.model);
        expect(r.status).toBe(403);
        return r;
      },
      { ...PROPAGATION, message: 'the new policy to reach the gateway' },
    );
    expect(refused.body.error.message).toContain('region policy (DE, FR)');
    const usNow = usUp.requests.length;
    expect((await chat(other.key, eea.model)).status).toBe(200);
    expect(usUp.requests.length).toBe(usNow);

    const cleared = await staff('delete', `/billing/accounts/${other.accountId}/region-policy`, { reason: 'customer withdrew the request' });
    expect(cleared.body).toMatchObject({ cleared: true, policy: null });
    await eventually(async () => expect((await chat(other.key, usOnly.model)).status).toBe(200), { ...PROPAGATION, message: 'the removal to reach the gateway' });

    // Each change audited with who, why, before and after.
    const changes = await db('register_changes').where({ entity_type: 'account_region_policy', entity_id: other.accountId }).orderBy('id').select('action', 'actor', 'reason', 'before', 'after');
    expect(changes).toEqual([
      { action: 'created', actor: `staff:${billing.id}`, reason: 'customer DPA requires DE or FR', before: null, after: { allowedCountries: ['DE', 'FR'], label: null } },
      { action: 'deleted', actor: `staff:${billing.id}`, reason: 'customer withdrew the request', before: { allowedCountries: ['DE', 'FR'], label: null }, after: null },
    ]);
    const shown = await staff('get', `/billing/accounts/${other.accountId}/region-policy`, undefined, compliance);
    expect(shown.body.changes.map((c: { action: string }) => c.action)).toEqual(['deleted', 'created']);
  });

  it('is set, shown and removed with `mixroute accounts region-policy`', async () => {
    const other = await anotherAccount();
    const env = testEnv(config);
    const set = await runCliJson(['accounts', 'region-policy', other.accountId, '--allow', 'EEA,CH', '--reason', 'customer request by email'], env);
    expect(set).toMatchObject({ changed: true, policy: { label: 'EEA,CH' } });
    expect(set.policy.allowedCountries).toContain('CH');
    expect(set.policy.allowedCountries).toContain('DE');
    const shown = await runCli(['accounts', 'region-policy', other.accountId], env);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toContain('region policy: EEA,CH');
    expect(shown.stdout).toContain('customer request by email');
    const noReason = await runCli(['accounts', 'region-policy', other.accountId, '--clear'], env);
    expect(noReason.code).not.toBe(0);
    expect(noReason.stderr).toContain('reason');
    const cleared = await runCliJson(['accounts', 'region-policy', other.accountId, '--clear', '--reason', 'customer request by email'], env);
    expect(cleared).toMatchObject({ cleared: true });
    expect((await regionPolicyService({ db }).get(other.accountId)).policy).toBeNull();
  });
});
