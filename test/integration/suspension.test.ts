import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminApp } from '../../src/admin/app';
import { systemClock } from '../../src/clock';
import { reinstateIfSettled } from '../../src/invoicing/suspension.data';
import { suspensionService } from '../../src/invoicing/suspension.service';
import { Money } from '../../src/shared/money.rules';
import { staffService } from '../../src/staff/staff.service';
import { runCli, runCliJson } from '../helpers/cli';
import { silentLogger, testConfig, testDb, testEnv } from '../helpers/env';
import { eventually } from '../helpers/eventually';
import type { FakeAnthropic } from '../helpers/fakeAnthropic';
import type { FakeUpstream } from '../helpers/fakeUpstream';
import { createCustomer, startAnthropicUpstreams, startTestGateway, type Customer } from '../helpers/gateway';
import { serve } from '../helpers/servers';

/**
 * Suspension end to end, with a real gateway, the real admin API and
 * PostgreSQL: billing staff suspend an account, every model route refuses it
 * with `account_suspended` (OpenAI's error shape, and Anthropic's on
 * /v1/messages) without reaching a provider, each refusal is metered with that
 * code, the account endpoints keep answering, and after reinstatement its
 * requests are served again. The gateway's key cache (GATEWAY_KEY_CACHE_MS,
 * at most 5 s) is the only delay: the waits below are that promise.
 */
const config = testConfig();
const db = testDb(config);
let gw: Awaited<ReturnType<typeof startTestGateway>>;
let openaiUp: FakeUpstream;
let anthropicUp: FakeAnthropic;
let customer: Customer;
let other: Customer;
let claude: string;
let admin: string;
let closeAdmin: () => Promise<void>;
let billing: { id: string; token: string };
let managementKey: string;

/** The key cache's promise (at most 5 s) with room for a loaded machine. */
const PROPAGATION = { timeoutMs: 15_000, intervalMs: 200 };

beforeAll(async () => {
  const up = await startAnthropicUpstreams(db);
  ({ anthropicUp, openaiUp, customer } = up);
  claude = `claude-${up.tag}`;
  await up.ops.addModel({ name: claude, provider: up.provider.name, upstreamModel: 'claude-fake-1', inputPerMtok: '3', outputPerMtok: '15', effectiveFrom: '2020-01-01T00:00:00Z' });
  other = await createCustomer(db, openaiUp.url);
  managementKey = (await up.ops.createKey({ accountId: customer.accountId, name: 'ops', kind: 'management' })).key;
  gw = await startTestGateway({}, config);
  const app = createAdminApp({ db, billing: config.billing, config, clock: systemClock, logger: silentLogger, readiness: {}, readyCheckTimeoutMs: 1000 });
  ({ url: admin, close: closeAdmin } = await serve(app));
  const t = await staffService({ db }).createStaffToken({ role: 'billing', name: 'collections' });
  billing = { id: t.id, token: t.token };
});
afterAll(async () => {
  await closeAdmin?.();
  await gw?.stop();
  await anthropicUp?.close();
  await openaiUp?.close();
  await db.destroy();
});

async function staff(method: 'get' | 'post', path: string, body?: unknown) {
  const res = await fetch(admin + path, {
    method: method.toUpperCase(),
    headers: { authorization: `Bearer ${billing.token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, body: (await res.json()) as any };
}

async function gateway(path: string, key: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(gw.url + path, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { authorization: `Bearer ${key}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  let json: any = text;
  try {
    json = JSON.parse(text);
  } catch {
    // a stream
  }
  return { status: res.status, body: json, requestId: res.headers.get('x-request-id') };
}

const chat = (key: string, model: string) => gateway('/v1/chat/completions', key, { model, max_tokens: 5, messages: [{ role: 'user', content: 'hello' }] });
const messages = (key: string, model: string) =>
  gateway('/v1/messages', key, { model, max_tokens: 5, messages: [{ role: 'user', content: 'hello' }] }, { 'anthropic-version': '2023-06-01' });

async function usageOf(requestId: string | null) {
  await gw.batcher.flush();
  return db('usage_events').where({ request_id: requestId }).first('status_code', 'error_type', 'cost', 'endpoint', 'account_id', 'input_tokens', 'output_tokens');
}

describe('suspension at the gateway', () => {
  it('refuses every model call of a suspended account with account_suspended, forwards nothing, meters the refusals, and serves it again once reinstated', async () => {
    // Served, and its key is now in the gateway's cache.
    expect((await chat(customer.key, customer.model)).status).toBe(200);
    expect((await messages(customer.key, claude)).status).toBe(200);

    const suspended = await staff('post', `/billing/accounts/${customer.accountId}/suspend`, { reason: '  invoice INV-7 unpaid for 30 days  ' });
    expect(suspended.status).toBe(200);
    expect(suspended.body).toMatchObject({ suspended: true, suspension: { reason: 'invoice INV-7 unpaid for 30 days', invoiceId: null, suspendedBy: `staff:${billing.id}`, reinstatedAt: null } });
    expect((await db('accounts').where({ id: customer.accountId }).first('status')).status).toBe('suspended');

    // Within the key cache's TTL, every instance sees it.
    const refused = await eventually(
      async () => {
        const r = await chat(customer.key, customer.model);
        expect(r.status).toBe(403);
        return r;
      },
      { ...PROPAGATION, message: 'the suspended account to be refused' },
    );
    expect(refused.body.error).toMatchObject({ type: 'insufficient_quota', code: 'account_suspended', param: null });
    expect(refused.body.error.message).toContain('suspended, usually because of an unpaid invoice');
    expect(refused.body.error.message).toContain(`contact billing at ${gw.config.invoicing.issuer.email}`);

    const openaiBefore = openaiUp.requests.length;
    const anthropicBefore = anthropicUp.requests.length;

    const refusedMessages = await messages(customer.key, claude);
    expect(refusedMessages.status).toBe(403);
    expect(refusedMessages.body).toMatchObject({ type: 'error', error: { type: 'permission_error' } });
    expect(refusedMessages.body.error.message).toContain('suspended, usually because of an unpaid invoice');
    // Chat for a model served by the Anthropic provider (translated) is refused too.
    const refusedTranslated = await chat(customer.key, claude);
    expect(refusedTranslated.status).toBe(403);
    expect(refusedTranslated.body.error.code).toBe('account_suspended');
    const again = await chat(customer.key, customer.model);
    expect(again.status).toBe(403);

    // Nothing reached a provider.
    expect(openaiUp.requests.length).toBe(openaiBefore);
    expect(anthropicUp.requests.length).toBe(anthropicBefore);

    // Metered like any refusal: a record per request with the code, no tokens, no cost.
    for (const [r, endpoint] of [
      [refused, 'chat.completions'],
      [refusedMessages, 'messages'],
      [refusedTranslated, 'chat.completions'],
    ] as const) {
      const row = await usageOf(r.requestId);
      expect(row, `${endpoint} refusal on file`).toMatchObject({ status_code: 403, error_type: 'account_suspended', endpoint, account_id: customer.accountId, input_tokens: 0, output_tokens: 0 });
      expect(new Money(row.cost).isZero()).toBe(true);
    }

    // Another account is unaffected.
    expect((await chat(other.key, other.model)).status).toBe(200);

    // The account endpoints keep answering, so the customer can see what is owed.
    const key = await gateway('/v1/key', managementKey);
    expect(key.status).toBe(200);
    const credits = await gateway('/v1/credits', managementKey);
    expect(credits.status).toBe(200);
    expect(credits.body.data.balance).toBeDefined();
    expect((await gateway('/v1/models', customer.key)).status).toBe(200);

    // Staff see it on the account.
    const shown = await staff('get', `/billing/accounts/${customer.accountId}`);
    expect(shown.status).toBe(200);
    expect(shown.body.status).toBe('suspended');
    expect(shown.body.suspension).toMatchObject({
      suspended: true,
      current: { reason: 'invoice INV-7 unpaid for 30 days', invoiceId: null, suspendedBy: `staff:${billing.id}` },
    });
    expect(Date.parse(shown.body.suspension.current.suspendedAt)).not.toBeNaN();

    const reinstated = await staff('post', `/billing/accounts/${customer.accountId}/reinstate`, { reason: 'customer paid by bank transfer' });
    expect(reinstated.status).toBe(200);
    expect(reinstated.body).toMatchObject({ reinstated: true, suspension: { reinstatedBy: `staff:${billing.id}`, reinstateReason: 'customer paid by bank transfer' } });

    await eventually(async () => expect((await chat(customer.key, customer.model)).status).toBe(200), { ...PROPAGATION, message: 'the reinstated account to be served' });
    expect((await messages(customer.key, claude)).status).toBe(200);

    const after = await staff('get', `/billing/accounts/${customer.accountId}`);
    expect(after.body.status).toBe('active');
    expect(after.body.suspension.suspended).toBe(false);
    expect(after.body.suspension.current).toBeNull();
    expect(after.body.suspension.history[0]).toMatchObject({
      reason: 'invoice INV-7 unpaid for 30 days',
      suspendedBy: `staff:${billing.id}`,
      reinstatedBy: `staff:${billing.id}`,
      reinstateReason: 'customer paid by bank transfer',
    });

    // Both changes are account events (emailed and delivered by webhook), once each.
    const events = await db('account_events').where({ account_id: customer.accountId }).whereIn('type', ['account.suspended', 'account.reinstated']).orderBy('occurred_at').select('type');
    expect(events.map((e) => e.type)).toEqual(['account.suspended', 'account.reinstated']);
  });

  it('answers a closed account’s key as an invalid key, as before', async () => {
    const c = await createCustomer(db, openaiUp.url);
    await db('accounts').where({ id: c.accountId }).update({ status: 'closed' });
    const r = await chat(c.key, c.model);
    expect(r.status).toBe(401);
    expect(r.body.error.code).toBe('invalid_api_key');
    // And a closed account cannot be suspended.
    const s = await staff('post', `/billing/accounts/${c.accountId}/suspend`, { reason: 'unpaid invoice' });
    expect(s.status).toBe(409);
  });
});

describe('suspension by staff', () => {
  it('is idempotent: suspending again keeps the suspension in force, reinstating an active account changes nothing', async () => {
    const c = await createCustomer(db, openaiUp.url);
    const first = await staff('post', `/billing/accounts/${c.accountId}/suspend`, { reason: 'unpaid invoice' });
    const second = await staff('post', `/billing/accounts/${c.accountId}/suspend`, { reason: 'another reason' });
    expect(first.body.suspended).toBe(true);
    expect(second.status).toBe(200);
    expect(second.body).toMatchObject({ suspended: false, suspension: { id: first.body.suspension.id, reason: 'unpaid invoice' } });
    expect(Number((await db('account_suspensions').where({ account_id: c.accountId }).count('* as n').first())!.n)).toBe(1);

    expect((await staff('post', `/billing/accounts/${c.accountId}/reinstate`, { reason: 'settled' })).body.reinstated).toBe(true);
    const noop = await staff('post', `/billing/accounts/${c.accountId}/reinstate`, { reason: 'settled again' });
    expect(noop.status).toBe(200);
    expect(noop.body).toEqual({ reinstated: false, suspension: null });
    expect((await staff('get', `/billing/accounts/${c.accountId}`)).body.suspension.history).toHaveLength(1);
  });

  it('a suspension staff made is not lifted by a settled invoice: only staff lift it', async () => {
    const c = await createCustomer(db, openaiUp.url);
    const svc = suspensionService({ db, clock: systemClock });
    await svc.suspend({ accountId: c.accountId, reason: 'manual hold', actor: 'test:staff' });
    const lifted = await db.transaction((trx) => reinstateIfSettled(trx, c.accountId, 'system:payments'));
    expect(lifted).toBe(false);
    expect((await svc.status(c.accountId)).current).toMatchObject({ reason: 'manual hold', invoiceId: null, suspendedBy: 'test:staff' });
    expect((await db('accounts').where({ id: c.accountId }).first('status')).status).toBe('suspended');
  });

  it('from the CLI: suspend, show, reinstate', async () => {
    const c = await createCustomer(db, openaiUp.url);
    const env = testEnv(config);
    const s = await runCliJson(['accounts', 'suspend', c.accountId, '--reason', 'invoice overdue 14 days'], env);
    expect(s).toMatchObject({ suspended: true, suspension: { reason: 'invoice overdue 14 days', invoiceId: null } });
    expect(s.suspension.suspendedBy).toMatch(/^cli:/);

    const shown = await runCli(['accounts', 'show', c.accountId], env);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toContain('status: suspended');
    expect(shown.stdout).toMatch(/suspension: SUSPENDED since \S+ by cli:\S+ \(staff decision\): invoice overdue 14 days/);
    const shownJson = await runCliJson(['accounts', 'show', c.accountId], env);
    expect(shownJson.suspension).toMatchObject({ suspended: true, current: { reason: 'invoice overdue 14 days' } });

    const missingReason = await runCli(['accounts', 'suspend', c.accountId], env);
    expect(missingReason.code).not.toBe(0);
    const shortReason = await runCli(['accounts', 'reinstate', c.accountId, '--reason', 'ok'], env);
    expect(shortReason.code).not.toBe(0);
    expect(shortReason.stderr).toContain('reason');

    const r = await runCliJson(['accounts', 'reinstate', c.accountId, '--reason', 'paid in full'], env);
    expect(r).toMatchObject({ reinstated: true, suspension: { reinstateReason: 'paid in full' } });
    expect(r.suspension.reinstatedBy).toMatch(/^cli:/);
    const after = await runCli(['accounts', 'show', c.accountId], env);
    expect(after.stdout).toContain('suspension: none');
    expect(after.stdout).toMatch(/past: .* invoice overdue 14 days; reinstated .* paid in full/);
  });
});
