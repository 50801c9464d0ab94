import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminApp } from '../../src/admin/app';
import { systemClock } from '../../src/clock';
import { suspensionService } from '../../src/invoicing/suspension.service';
import { staffService } from '../../src/staff/staff.service';
import type { StaffRole } from '../../src/staff/staff.rules';
import { silentLogger, testConfig, testDb } from '../helpers/env';
import type { FakeAnthropic } from '../helpers/fakeAnthropic';
import type { FakeUpstream } from '../helpers/fakeUpstream';
import { startAnthropicUpstreams, startTestGateway, type Customer } from '../helpers/gateway';
import { serve } from '../helpers/servers';

/**
 * The suspension boundary, from an attacker's side:
 * - staff: only billing and admin tokens suspend or reinstate; the reason is
 *   bounded (3-500 characters, no control characters, no other fields); ids
 *   are UUIDs of existing accounts. Nothing changes on a refused request.
 * - customer: a suspended account reaches no provider by any route (each
 *   OpenAI endpoint, streamed or not, a model behind the Anthropic provider,
 *   /v1/messages, count_tokens, x-api-key, a malformed body, a key minted
 *   after the suspension by its management key).
 */
const config = testConfig();
const db = testDb(config);
let admin: string;
let closeAdmin: () => Promise<void>;
const tokens = {} as Record<StaffRole, string>;
let gw: Awaited<ReturnType<typeof startTestGateway>>;
let openaiUp: FakeUpstream;
let anthropicUp: FakeAnthropic;
let customer: Customer;
let claude: string;
let managementKey: string;
let ops: Awaited<ReturnType<typeof startAnthropicUpstreams>>['ops'];

beforeAll(async () => {
  const up = await startAnthropicUpstreams(db);
  ({ anthropicUp, openaiUp, customer, ops } = up);
  claude = `claude-${up.tag}`;
  await ops.addModel({ name: claude, provider: up.provider.name, upstreamModel: 'claude-fake-1', inputPerMtok: '3', outputPerMtok: '15', effectiveFrom: '2020-01-01T00:00:00Z' });
  managementKey = (await ops.createKey({ accountId: customer.accountId, name: 'ops', kind: 'management' })).key;
  const app = createAdminApp({ db, billing: config.billing, config, clock: systemClock, logger: silentLogger, readiness: {}, readyCheckTimeoutMs: 1000 });
  ({ url: admin, close: closeAdmin } = await serve(app));
  for (const role of ['billing', 'compliance', 'admin'] as const) tokens[role] = (await staffService({ db }).createStaffToken({ role })).token;
  // Suspended before the gateway starts: no cache entry to wait out.
  await suspensionService({ db, clock: systemClock }).suspend({ accountId: customer.accountId, reason: 'unpaid invoice', actor: 'test:staff' });
  gw = await startTestGateway({}, config);
});
afterAll(async () => {
  await closeAdmin?.();
  await gw?.stop();
  await anthropicUp?.close();
  await openaiUp?.close();
  await db.destroy();
});

async function staff(token: string, method: 'get' | 'post', path: string, body?: unknown, raw?: string) {
  const res = await fetch(admin + path, {
    method: method.toUpperCase(),
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined || raw !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(raw !== undefined ? { body: raw } : body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, contentType: res.headers.get('content-type') ?? '', body: (await res.json()) as any };
}

const statusOf = async (accountId: string) => (await db('accounts').where({ id: accountId }).first('status')).status as string;
const suspensionRows = async (accountId: string) => Number((await db('account_suspensions').where({ account_id: accountId }).count('* as n').first())!.n);

async function newAccount(): Promise<string> {
  return (await ops.createAccount({ name: `Target ${Math.random().toString(36).slice(2, 8)}` })).id;
}

describe('staff: who may suspend, and with what', () => {
  it('refuses the compliance role (403) both ways, and nothing changes', async () => {
    const id = await newAccount();
    const s = await staff(tokens.compliance, 'post', `/billing/accounts/${id}/suspend`, { reason: 'unpaid invoice' });
    expect(s.status).toBe(403);
    expect(s.contentType).toContain('application/problem+json');
    expect(await statusOf(id)).toBe('active');
    expect(await suspensionRows(id)).toBe(0);

    await suspensionService({ db, clock: systemClock }).suspend({ accountId: id, reason: 'unpaid invoice', actor: 'test:staff' });
    const r = await staff(tokens.compliance, 'post', `/billing/accounts/${id}/reinstate`, { reason: 'let them back in' });
    expect(r.status).toBe(403);
    expect(await statusOf(id)).toBe('suspended');
    // Nor may it read the account (and its suspension).
    expect((await staff(tokens.compliance, 'get', `/billing/accounts/${id}`)).status).toBe(403);
    // An admin may.
    expect((await staff(tokens.admin, 'post', `/billing/accounts/${id}/reinstate`, { reason: 'let them back in' })).body.reinstated).toBe(true);
  });

  it('bounds the reason: present, a string, 3-500 characters after trimming, one line without control characters, no other fields', async () => {
    const id = await newAccount();
    const bad: [string, unknown][] = [
      ['missing', {}],
      ['empty', { reason: '' }],
      ['too short', { reason: 'ab' }],
      ['short once trimmed', { reason: '   ab   ' }],
      ['too long', { reason: 'x'.repeat(501) }],
      ['a number', { reason: 12345 }],
      ['an array', { reason: ['unpaid', 'invoice'] }],
      ['an object', { reason: { toString: 'unpaid invoice' } }],
      ['null', { reason: null }],
      ['a terminal escape', { reason: 'unpaid \u001b[2J\u001b[31minvoice' }],
      ['a newline', { reason: 'unpaid\ninvoice' }],
      ['a C1 control', { reason: 'unpaid \u009b invoice' }],
      ['an extra field', { reason: 'unpaid invoice', invoiceId: '00000000-0000-4000-8000-000000000000' }],
      ['an extra actor', { reason: 'unpaid invoice', actor: 'system:dunning' }],
      ['a list body', [{ reason: 'unpaid invoice' }]],
    ];
    for (const [label, body] of bad) {
      for (const verb of ['suspend', 'reinstate']) {
        const res = await staff(tokens.billing, 'post', `/billing/accounts/${id}/${verb}`, body);
        expect(res.status, `${verb}: ${label}`).toBe(400);
        expect(res.contentType).toContain('application/problem+json');
        expect(JSON.stringify(res.body)).not.toMatch(/at .*\.ts:\d+/);
      }
    }
    const malformed = await staff(tokens.billing, 'post', `/billing/accounts/${id}/suspend`, undefined, '{"reason": "unpaid');
    expect(malformed.status).toBe(400);
    expect(await statusOf(id)).toBe('active');
    expect(await suspensionRows(id)).toBe(0);

    // 500 characters exactly is accepted, and kept as sent.
    const long = 'y'.repeat(500);
    const ok = await staff(tokens.billing, 'post', `/billing/accounts/${id}/suspend`, { reason: long });
    expect(ok.status).toBe(200);
    expect(ok.body.suspension.reason).toBe(long);
  });

  it('refuses malformed ids (400) and unknown accounts (404) on suspend, reinstate and show', async () => {
    const bad = ['not-a-uuid', "1' OR '1'='1", '00000000-0000-4000-8000-00000000000g', 'a'.repeat(2000), '%00', '..%2F..%2Fstaff'];
    for (const id of bad) {
      for (const verb of ['suspend', 'reinstate']) {
        const res = await staff(tokens.billing, 'post', `/billing/accounts/${encodeURIComponent(id)}/${verb}`, { reason: 'unpaid invoice' });
        expect([400, 404], `${verb} ${id.slice(0, 40)}`).toContain(res.status);
        expect(res.contentType).toContain('application/problem+json');
      }
    }
    const notUuid = await staff(tokens.billing, 'post', '/billing/accounts/not-a-uuid/suspend', { reason: 'unpaid invoice' });
    expect(notUuid.status).toBe(400);

    const missing = '00000000-0000-4000-8000-00000000dead';
    for (const verb of ['suspend', 'reinstate']) {
      const res = await staff(tokens.billing, 'post', `/billing/accounts/${missing}/${verb}`, { reason: 'unpaid invoice' });
      expect(res.status, verb).toBe(404);
      expect(res.body.detail).toContain(missing);
    }
    expect((await staff(tokens.billing, 'get', `/billing/accounts/${missing}`)).status).toBe(404);
    expect(await db('account_suspensions').where({ account_id: missing }).first()).toBeUndefined();
  });
});

describe('customer: a suspended account reaches no provider by any route', () => {
  const post = (path: string, body: unknown, headers: Record<string, string> = {}, raw?: string) =>
    fetch(gw.url + path, {
      method: 'POST',
      headers: { authorization: `Bearer ${customer.key}`, 'content-type': 'application/json', ...headers },
      body: raw ?? JSON.stringify(body),
    });

  it('is refused with account_suspended on every model route, and no provider sees a request', async () => {
    const openaiBefore = openaiUp.requests.length;
    const anthropicBefore = anthropicUp.requests.length;
    const m = customer.model;
    const openaiRoutes: [string, string, unknown][] = [
      ['chat', '/v1/chat/completions', { model: m, max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] }],
      ['chat streamed', '/v1/chat/completions', { model: m, max_tokens: 5, stream: true, messages: [{ role: 'user', content: 'hi' }] }],
      ['chat, Anthropic-served model', '/v1/chat/completions', { model: claude, max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] }],
      ['chat streamed, Anthropic-served model', '/v1/chat/completions', { model: claude, max_tokens: 5, stream: true, messages: [{ role: 'user', content: 'hi' }] }],
      ['completions', '/v1/completions', { model: m, max_tokens: 5, prompt: 'hi' }],
      ['completions streamed', '/v1/completions', { model: m, max_tokens: 5, stream: true, prompt: 'hi' }],
      ['embeddings', '/v1/embeddings', { model: m, input: 'hi' }],
      ['responses', '/v1/responses', { model: m, input: 'hi' }],
      ['responses streamed', '/v1/responses', { model: m, input: 'hi', stream: true }],
      ['an unknown model', '/v1/chat/completions', { model: 'no-such-model', messages: [{ role: 'user', content: 'hi' }] }],
    ];
    for (const [label, path, body] of openaiRoutes) {
      const res = await post(path, body);
      expect(res.status, label).toBe(403);
      const j = (await res.json()) as { error: { code: string; type: string } };
      expect(j.error, label).toMatchObject({ code: 'account_suspended', type: 'insufficient_quota' });
    }
    // A body that is not even JSON learns nothing else.
    const garbage = await post('/v1/chat/completions', undefined, {}, '{"model": ');
    expect(garbage.status).toBe(403);

    const anthropicHeaders = { 'anthropic-version': '2023-06-01' };
    const anthropicRoutes: [string, string, unknown, Record<string, string>][] = [
      ['messages', '/v1/messages', { model: claude, max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] }, anthropicHeaders],
      ['messages streamed', '/v1/messages', { model: claude, max_tokens: 5, stream: true, messages: [{ role: 'user', content: 'hi' }] }, anthropicHeaders],
      ['messages, OpenAI-served model', '/v1/messages', { model: m, max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] }, anthropicHeaders],
      ['count_tokens', '/v1/messages/count_tokens', { model: claude, messages: [{ role: 'user', content: 'hi' }] }, anthropicHeaders],
      // Anthropic's clients send the key as x-api-key.
      ['messages with x-api-key', '/v1/messages', { model: claude, max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] }, { ...anthropicHeaders, authorization: '', 'x-api-key': customer.key }],
    ];
    for (const [label, path, body, headers] of anthropicRoutes) {
      const res = await fetch(gw.url + path, {
        method: 'POST',
        headers: { ...(headers.authorization === '' ? {} : { authorization: `Bearer ${customer.key}` }), 'content-type': 'application/json', ...Object.fromEntries(Object.entries(headers).filter(([k]) => k !== 'authorization')) },
        body: JSON.stringify(body),
      });
      expect(res.status, label).toBe(403);
      const j = (await res.json()) as { type: string; error: { type: string; message: string } };
      expect(j, label).toMatchObject({ type: 'error', error: { type: 'permission_error' } });
      expect(j.error.message, label).toContain('suspended');
    }

    expect(openaiUp.requests.length).toBe(openaiBefore);
    expect(anthropicUp.requests.length).toBe(anthropicBefore);
    // Every refusal is on file with its code.
    await gw.batcher.flush();
    const refused = await db('usage_events').where({ account_id: customer.accountId, error_type: 'account_suspended' }).count('* as n').first();
    expect(Number(refused!.n)).toBeGreaterThanOrEqual(openaiRoutes.length + 1 + anthropicRoutes.length);
    const served = await db('usage_events').where({ account_id: customer.accountId }).where('status_code', '<', 400).first();
    expect(served).toBeUndefined();
  });

  it('cannot escape by minting a new key with its management key: the new key is suspended too', async () => {
    const minted = await fetch(`${gw.url}/v1/keys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${managementKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'fresh' }),
    });
    // The key endpoints keep working for a suspended account; what they mint belongs to it and is suspended with it.
    expect(minted.status).toBe(201);
    const key = ((await minted.json()) as { key: string }).key;
    const before = openaiUp.requests.length;
    const res = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: customer.model, max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(res.status).toBe(403);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('account_suspended');
    expect(openaiUp.requests.length).toBe(before);
  });
});
