import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accountsService } from '../../src/accounts/accounts.service';
import { systemClock } from '../../src/clock';
import { Money } from '../../src/shared/money.rules';
import { testConfig, testDb } from '../helpers/env';
import { eventually } from '../helpers/eventually';
import type { FakeAnthropic } from '../helpers/fakeAnthropic';
import { startFakeUpstream, type FakeUpstream } from '../helpers/fakeUpstream';
import { createCustomer, startAnthropicUpstreams, startTestGateway, UPSTREAM_KEY, UPSTREAM_KEY_ENV, type Customer } from '../helpers/gateway';

/**
 * Sub-processor notices at the gateway, with a real gateway, fake upstreams
 * and PostgreSQL. The agreement, change and notice rows are written with SQL
 * (as the notice service writes them). An account with a data-processing
 * agreement whose notice for the model's primary provider is pending is
 * served by the fallback and never reaches the primary; with every route held
 * (pending or objected) the model is refused with subprocessor_not_approved on
 * the OpenAI and Anthropic routes, metered, nothing forwarded; an account
 * without an agreement still reaches the held provider; a notice accepted or
 * taking effect lets the provider in within the key cache's TTL; a provider
 * registered while the account's key is cached is not used before the key
 * shows the notice committed with the entry; and
 * GET /v1/models lists only the models the caller has a route of.
 */
const config = testConfig();
const db = testDb(config);
const ops = accountsService({ db, clock: systemClock });
let gw: Awaited<ReturnType<typeof startTestGateway>>;
let heldUp: FakeUpstream;
let okUp: FakeUpstream;
let soleUp: FakeUpstream;
let anthropicUp: FakeAnthropic;
let openaiUp: FakeUpstream;
/** Primary (held for this account) on heldUp, fallback (not held) on okUp. */
let dpa: Customer;
/** Its model's only route is held (objected); its agreement also holds the Anthropic provider (pending). */
let allHeld: Customer;
/** A model whose provider has no register entry. */
let undisclosed: Customer;
let claude: string;
let anthropicProvider: string;
const notices: Record<string, string> = {};

/** The key cache's TTL and a routing refresh, with room for a loaded machine. */
const PROPAGATION = { timeoutMs: 15_000, intervalMs: 200 };
const PERIOD_MS = 30 * 86_400_000;

async function register(provider: string) {
  const p = await db('providers').where({ name: provider }).first('id');
  await db('recipients').insert({ name: `recipient ${provider}`, kind: 'model_provider', provider_id: p.id, countries: ['US'] });
}

async function agreement(accountId: string) {
  await db('account_processing_agreements').insert({ account_id: accountId, agreement_ref: `DPA-${accountId.slice(0, 8)}`, signed_on: '2026-01-01', set_by: 'test', reason: 'test fixture' });
}

/** A change announcing `provider` and the account's notice of it; the change's id. */
async function notice(accountId: string, provider: string, status: 'pending' | 'objected') {
  const r = await db('recipients').join('providers', 'providers.id', 'recipients.provider_id').where('providers.name', provider).first('recipients.id');
  const [rc] = await db('register_changes').insert({ entity_type: 'recipient', entity_id: r.id, action: 'created', actor: 'test', reason: 'test fixture' }).returning('id');
  const announced = new Date();
  const [change] = await db('subprocessor_changes')
    .insert({ register_change_id: rc.id, recipient_id: r.id, kind: 'recipient_added', countries: ['US'], notice_period_ms: PERIOD_MS, announced_at: announced, effective_at: new Date(announced.getTime() + PERIOD_MS) })
    .returning('id');
  const decided = status === 'objected' ? { decided_by: 'test', decided_at: announced } : {};
  await db('subprocessor_notices').insert({ change_id: change.id, account_id: accountId, status, notified_at: announced, ...decided });
  return change.id as string;
}

async function anotherAccount() {
  const tag = randomUUID().slice(0, 8);
  const account = await ops.createAccount({ name: `Other ${tag}`, plan: 'postpaid', creditLimit: '100' });
  const user = await ops.createUser({ accountId: account.id, name: `User ${tag}`, email: `other-${tag}@example.com` });
  const key = await ops.createKey({ accountId: account.id, userId: user.id });
  return { accountId: account.id, key: key.key };
}

beforeAll(async () => {
  heldUp = await startFakeUpstream({ apiKey: UPSTREAM_KEY });
  okUp = await startFakeUpstream({ apiKey: UPSTREAM_KEY });
  soleUp = await startFakeUpstream({ apiKey: UPSTREAM_KEY });
  dpa = await createCustomer(db, heldUp.url, { fallbackUrls: [okUp.url] });
  await register(dpa.provider);
  await register(`${dpa.provider}-fb0`);
  allHeld = await createCustomer(db, soleUp.url);
  await register(allHeld.provider);
  undisclosed = await createCustomer(db, okUp.url);
  const up = await startAnthropicUpstreams(db);
  ({ anthropicUp, openaiUp } = up);
  claude = `claude-${up.tag}`;
  anthropicProvider = up.provider.name;
  await up.ops.addModel({ name: claude, provider: anthropicProvider, upstreamModel: 'claude-fake-1', inputPerMtok: '3', outputPerMtok: '15', effectiveFrom: '2020-01-01T00:00:00Z' });
  await register(anthropicProvider);

  // Written before the keys are first used, so the gateway loads them with the keys.
  await agreement(dpa.accountId);
  notices.dpaPrimary = await notice(dpa.accountId, dpa.provider, 'pending');
  await agreement(allHeld.accountId);
  notices.allHeldSole = await notice(allHeld.accountId, allHeld.provider, 'objected');
  notices.allHeldClaude = await notice(allHeld.accountId, anthropicProvider, 'pending');

  gw = await startTestGateway({}, config, { [UPSTREAM_KEY_ENV]: UPSTREAM_KEY });
});

afterAll(async () => {
  await gw?.stop();
  for (const u of [heldUp, okUp, soleUp, openaiUp]) await u?.close();
  await anthropicUp?.close();
  // Other test files announce register changes to every account with an agreement: ours end here.
  await db('account_processing_agreements').whereIn('account_id', [dpa?.accountId, allHeld?.accountId].filter(Boolean)).delete();
  await db.destroy();
});

async function gateway(path: string, key: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(gw.url + path, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as any, requestId: res.headers.get('x-request-id') };
}

const chat = (key: string, model: string) => gateway('/v1/chat/completions', key, { model, max_tokens: 5, messages: [{ role: 'user', content: 'hello' }] });
const messages = (key: string, model: string) =>
  gateway('/v1/messages', key, { model, max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] }, { 'anthropic-version': '2023-06-01' });

async function modelIds(key: string, headers: Record<string, string> = {}): Promise<string[]> {
  const res = await fetch(`${gw.url}/v1/models`, { headers: { authorization: `Bearer ${key}`, ...headers } });
  expect(res.status).toBe(200);
  return ((await res.json()) as { data: { id: string }[] }).data.map((m) => m.id);
}

async function usageOf(requestId: string | null) {
  await gw.batcher.flush();
  return db('usage_events').where({ request_id: requestId }).first('status_code', 'error_type', 'cost', 'endpoint', 'account_id', 'provider', 'input_tokens', 'output_tokens');
}

describe('sub-processor notices at the gateway', () => {
  it('serves an account with an agreement from the fallback while its primary provider is held, and never reaches the held one', async () => {
    const heldBefore = heldUp.requests.length;
    const okBefore = okUp.requests.length;
    const served = await eventually(
      async () => {
        const r = await chat(dpa.key, dpa.model);
        expect(r.status).toBe(200);
        return r;
      },
      { ...PROPAGATION, message: 'the account to be served by the fallback' },
    );
    expect(served.body.choices[0].message.content).toBeTruthy();
    expect(okUp.requests.length).toBeGreaterThan(okBefore);
    expect((await usageOf(served.requestId)).provider).toBe(`${dpa.provider}-fb0`);

    // The fallback fails: the answer is that failure; the held primary is still never tried.
    okUp.enqueue({ kind: 'error', status: 500 });
    const failed = await chat(dpa.key, dpa.model);
    expect(failed.status).toBe(502);
    expect(heldUp.requests.length).toBe(heldBefore);
  });

  it('refuses a model whose every route is held with subprocessor_not_approved on both APIs, forwards nothing, and meters it', async () => {
    const soleBefore = soleUp.requests.length;
    const anthropicBefore = anthropicUp.requests.length;
    const refused = await chat(allHeld.key, allHeld.model);
    expect(refused.status).toBe(403);
    expect(refused.body.error).toMatchObject({ type: 'request_forbidden', code: 'subprocessor_not_approved', param: null });
    expect(refused.body.error.message).toContain(allHeld.model);
    expect(refused.body.error.message).toContain('data-processing agreement');
    expect(refused.body.error.message).not.toContain(allHeld.provider);
    const row = await usageOf(refused.requestId);
    expect(row).toMatchObject({ status_code: 403, error_type: 'subprocessor_not_approved', endpoint: 'chat.completions', account_id: allHeld.accountId, input_tokens: 0, output_tokens: 0 });
    expect(new Money(row.cost).isZero()).toBe(true);

    const viaMessages = await messages(allHeld.key, claude);
    expect(viaMessages.status).toBe(403);
    expect(viaMessages.body).toMatchObject({ type: 'error', error: { type: 'permission_error' } });
    expect(viaMessages.body.error.message).toContain(claude);
    expect(viaMessages.body.error.message).not.toContain(anthropicProvider);
    expect((await usageOf(viaMessages.requestId)).error_type).toBe('subprocessor_not_approved');
    // Translated chat and token counting reach the provider too: refused alike.
    const translated = await chat(allHeld.key, claude);
    expect(translated.status).toBe(403);
    expect(translated.body.error.code).toBe('subprocessor_not_approved');
    const counted = await gateway('/v1/messages/count_tokens', allHeld.key, { model: claude, messages: [{ role: 'user', content: 'hi' }] }, { 'anthropic-version': '2023-06-01' });
    expect(counted.status).toBe(403);

    // A provider without a register entry is no agreed sub-processor.
    const unlisted = await chat(allHeld.key, undisclosed.model);
    expect(unlisted.status).toBe(403);
    expect(unlisted.body.error.code).toBe('subprocessor_not_approved');

    expect(soleUp.requests.length).toBe(soleBefore);
    expect(anthropicUp.requests.length).toBe(anthropicBefore);
  });

  it('lets an account without an agreement reach the held provider and providers without a register entry', async () => {
    const other = await anotherAccount();
    const heldBefore = heldUp.requests.length;
    const r = await chat(other.key, dpa.model);
    expect(r.status).toBe(200);
    expect(heldUp.requests.length).toBe(heldBefore + 1);
    expect((await usageOf(r.requestId)).provider).toBe(dpa.provider);
    expect((await chat(other.key, allHeld.model)).status).toBe(200);
    expect((await chat(other.key, undisclosed.model)).status).toBe(200);
    const listed = await modelIds(other.key);
    expect(listed).toEqual(expect.arrayContaining([dpa.model, allHeld.model, undisclosed.model, claude]));
  });

  it('lists in GET /v1/models only the models with a route the agreement allows', async () => {
    for (const headers of [{}, { 'anthropic-version': '2023-06-01' }] as Record<string, string>[]) {
      const listed = await modelIds(allHeld.key, headers);
      expect(listed).not.toContain(allHeld.model);
      expect(listed).not.toContain(claude);
      expect(listed).not.toContain(undisclosed.model);
      // The primary is held, the fallback is not: listed.
      expect(listed).toContain(dpa.model);
    }
  });

  it('never lets a provider registered after the key was cached in before the key shows its notice', async () => {
    // Primary `late` has no register entry yet (left alone by an agreement), the fallback has one.
    const lateUp = await startFakeUpstream({ apiKey: UPSTREAM_KEY });
    try {
      const late = await createCustomer(db, lateUp.url, { fallbackUrls: [okUp.url] });
      await register(`${late.provider}-fb0`);
      await agreement(late.accountId);
      // An account limited to the US without an agreement: it reaches `late` once the routing table has its entry.
      const watcher = await anotherAccount();
      await db('account_region_policies').insert({ account_id: watcher.accountId, allowed_countries: ['US'], label: null });
      const reachesLate = async (key: string) => {
        const before = lateUp.requests.length;
        expect((await chat(key, late.model)).status).toBe(200);
        return lateUp.requests.length > before;
      };
      // Both keys are cached now, without the notice to come (once the routing table has the fallback's entry).
      await eventually(async () => expect(await reachesLate(late.key)).toBe(false), { ...PROPAGATION, message: 'the fallback to serve the account' });
      expect(await reachesLate(watcher.key)).toBe(false);

      // The entry and the notice commit together, as the register service writes them.
      await db.transaction(async (trx) => {
        const p = await trx('providers').where({ name: late.provider }).first('id');
        const [r] = await trx('recipients').insert({ name: `recipient ${late.provider}`, kind: 'model_provider', provider_id: p.id, countries: ['US'] }).returning('id');
        const [rc] = await trx('register_changes').insert({ entity_type: 'recipient', entity_id: r.id, action: 'created', actor: 'test', reason: 'test fixture' }).returning('id');
        const at = new Date();
        const [change] = await trx('subprocessor_changes')
          .insert({ register_change_id: rc.id, recipient_id: r.id, kind: 'recipient_added', countries: ['US'], notice_period_ms: PERIOD_MS, announced_at: at, effective_at: new Date(at.getTime() + PERIOD_MS) })
          .returning('id');
        await trx('subprocessor_notices').insert({ change_id: change.id, account_id: late.accountId, status: 'pending' });
      });
      // Until the routing table has the entry (the watcher reaches `late`), while the cached key may still
      // have no notice, no request of the account reaches `late`. A violation is collected, not thrown, so
      // that eventually() cannot retry past it.
      const violations: number[] = [];
      await eventually(
        async () => {
          if (await reachesLate(late.key)) violations.push(violations.length);
          expect(await reachesLate(watcher.key)).toBe(true);
        },
        { ...PROPAGATION, message: 'the routing table to have the new entry' },
      );
      expect(violations).toEqual([]);
      for (let i = 0; i < 5; i++) expect(await reachesLate(late.key)).toBe(false);
    } finally {
      await lateUp.close();
    }
  });

  it('lets the provider in within the key cache TTL once the notice is accepted, or has taken effect', async () => {
    await db('subprocessor_notices').where({ change_id: notices.allHeldSole, account_id: allHeld.accountId }).update({ status: 'accepted', decided_by: 'test', decided_at: new Date() });
    const soleBefore = soleUp.requests.length;
    await eventually(async () => expect((await chat(allHeld.key, allHeld.model)).status).toBe(200), { ...PROPAGATION, message: 'the accepted provider to be reached' });
    expect(soleUp.requests.length).toBeGreaterThan(soleBefore);

    await db('subprocessor_notices').where({ change_id: notices.allHeldClaude, account_id: allHeld.accountId }).update({ status: 'effective' });
    await eventually(async () => expect((await messages(allHeld.key, claude)).status).toBe(200), { ...PROPAGATION, message: 'the provider whose notice took effect to be reached' });
    expect(await modelIds(allHeld.key)).toEqual(expect.arrayContaining([allHeld.model, claude]));

    // An objection after accepting holds it back again.
    await db('subprocessor_notices').where({ change_id: notices.allHeldSole, account_id: allHeld.accountId }).update({ status: 'objected' });
    await eventually(async () => expect((await chat(allHeld.key, allHeld.model)).body.error?.code).toBe('subprocessor_not_approved'), {
      ...PROPAGATION,
      message: 'the objection to reach the gateway',
    });
    expect(await modelIds(allHeld.key)).not.toContain(allHeld.model);
  });
});
