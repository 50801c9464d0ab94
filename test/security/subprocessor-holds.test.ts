import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testConfig, testDb } from '../helpers/env';
import { eventually } from '../helpers/eventually';
import { startFakeUpstream, type FakeUpstream } from '../helpers/fakeUpstream';
import { createCustomer, startTestGateway, UPSTREAM_KEY, type Customer } from '../helpers/gateway';

/**
 * Sub-processor holds against a client that wants its traffic to reach a held
 * provider anyway: naming the provider's own model id, a provider-prefixed
 * model, a header or body field that picks a provider or route, or another
 * account's acceptance of the same change. The holds come from the database
 * with the key and the routes from the routing table, never from the request.
 */
const config = testConfig();
const db = testDb(config);
let gw: Awaited<ReturnType<typeof startTestGateway>>;
let up: FakeUpstream;
/** Its model's only provider is held by a pending notice. */
let held: Customer;
/** Another account with an agreement that accepted the same change (it calls `held.model`). */
let accepted: Customer;

const PERIOD_MS = 30 * 86_400_000;

beforeAll(async () => {
  up = await startFakeUpstream({ apiKey: UPSTREAM_KEY });
  held = await createCustomer(db, up.url);
  accepted = await createCustomer(db, up.url);
  const p = await db('providers').where({ name: held.provider }).first('id');
  const [r] = await db('recipients').insert({ name: `recipient ${held.provider}`, kind: 'model_provider', provider_id: p.id, countries: ['US'] }).returning('id');
  const [rc] = await db('register_changes').insert({ entity_type: 'recipient', entity_id: r.id, action: 'created', actor: 'test', reason: 'test fixture' }).returning('id');
  const now = new Date();
  const [change] = await db('subprocessor_changes')
    .insert({ register_change_id: rc.id, recipient_id: r.id, kind: 'recipient_added', countries: ['US'], notice_period_ms: PERIOD_MS, announced_at: now, effective_at: new Date(now.getTime() + PERIOD_MS) })
    .returning('id');
  for (const c of [held, accepted]) {
    await db('account_processing_agreements').insert({ account_id: c.accountId, agreement_ref: 'DPA-sec', signed_on: '2026-01-01', set_by: 'test', reason: 'test fixture' });
  }
  await db('subprocessor_notices').insert([
    { change_id: change.id, account_id: held.accountId, status: 'pending' },
    { change_id: change.id, account_id: accepted.accountId, status: 'accepted', decided_by: 'test', decided_at: now },
  ]);
  gw = await startTestGateway({}, config);
});

afterAll(async () => {
  await gw?.stop();
  await up?.close();
  await db('account_processing_agreements').whereIn('account_id', [held?.accountId, accepted?.accountId].filter(Boolean)).delete();
  await db.destroy();
});

async function call(path: string, key: string, body: Record<string, unknown>, headers: Record<string, string> = {}) {
  const r = await fetch(gw.url + path, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  return { status: r.status, body: (await r.json()) as any };
}

describe('sub-processor holds at the gateway', () => {
  it('are not lifted by a header, a body field, a model name or another account accepting', async () => {
    // The other account's acceptance is its own: it reaches the provider, the held account does not.
    await eventually(
      async () => {
        expect((await call('/v1/chat/completions', accepted.key, { model: held.model, messages: [{ role: 'user', content: 'hi' }] })).status).toBe(200);
        expect((await call('/v1/chat/completions', held.key, { model: held.model, messages: [{ role: 'user', content: 'hi' }] })).status).toBe(403);
      },
      { timeoutMs: 15_000, intervalMs: 200, message: 'the hold to apply to the held account only' },
    );
    const before = up.requests.length;

    const attempts: { headers: Record<string, string>; body: Record<string, unknown> }[] = [
      { headers: { 'x-mixroute-provider': held.provider }, body: {} },
      { headers: { 'x-provider': held.provider, 'x-route': '0', 'x-fallback': 'false' }, body: {} },
      { headers: { 'x-subprocessor-notice': 'accepted', 'x-mixroute-dpa': 'none' }, body: {} },
      { headers: { 'x-mixroute-account': accepted.accountId, 'x-api-key': accepted.key }, body: {} },
      { headers: {}, body: { provider: held.provider, route: 0, fallbacks: [] } },
      { headers: {}, body: { subprocessors: { held: [] }, dpa: false, accept_notice: true } },
      { headers: {}, body: { metadata: { provider: held.provider, notice: 'accepted' }, user: accepted.accountId } },
      { headers: {}, body: { stream: true } },
    ];
    for (const a of attempts) {
      const r = await call('/v1/chat/completions', held.key, { model: held.model, messages: [{ role: 'user', content: 'hi' }], ...a.body }, a.headers);
      expect(r.status, JSON.stringify(a)).toBe(403);
      expect(r.body.error.code).toBe('subprocessor_not_approved');
      expect(r.body.error.message).not.toContain(held.provider);
    }

    // The provider's own model id, or a provider-prefixed name, is no route of its own.
    for (const model of ['fake-model', `${held.provider}/fake-model`, `${held.provider}/${held.model}`, `${held.provider}:${held.model}`, `${held.model} `, held.model.toUpperCase()]) {
      const r = await call('/v1/chat/completions', held.key, { model, messages: [{ role: 'user', content: 'hi' }] });
      expect(r.status, model).not.toBe(200);
      expect([403, 404, 400], model).toContain(r.status);
      const m = await call('/v1/messages', held.key, { model, max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] }, { 'anthropic-version': '2023-06-01' });
      expect(m.status, model).not.toBe(200);
    }
    expect(up.requests.length).toBe(before);
  });
});
