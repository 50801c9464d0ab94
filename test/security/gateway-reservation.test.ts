import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Money } from '../../src/shared/money.rules';
import { testConfig, testDb } from '../helpers/env';
import { startFakeUpstream, type FakeUpstream } from '../helpers/fakeUpstream';
import { createCustomer, startTestGateway, UPSTREAM_KEY } from '../helpers/gateway';

/**
 * A prepaid customer with a small balance tries to make one request cost more
 * than the gateway reserved for it: many choices (n, best_of, a list of
 * prompts) under a one-token limit, or no limit at all while the provider
 * would generate far more than the reserved default.
 *
 * Prices: input free, every output token 1.00, so a reservation is exactly
 * the number of output tokens it covers.
 */
const config = testConfig();
const db = testDb(config);
const PRICES = { input: '0', output: '1000000' };
const DEFAULT_BOUND = 3;
let upstream: FakeUpstream;
let gw: Awaited<ReturnType<typeof startTestGateway>>;

beforeAll(async () => {
  upstream = await startFakeUpstream({ apiKey: UPSTREAM_KEY });
  gw = await startTestGateway({ GATEWAY_DEFAULT_MAX_OUTPUT_TOKENS: String(DEFAULT_BOUND), UPSTREAM_ALLOWED_HOSTS: '127.0.0.1' }, config);
});
afterAll(async () => {
  await gw?.stop();
  await upstream?.close();
  await db.destroy();
});

async function prepaid(credit: string) {
  const c = await createCustomer(db, upstream.url, { prices: PRICES, credit });
  await gw.routing.refresh();
  return c;
}

function post(path: string, key: string, body: Record<string, unknown>) {
  return fetch(`${gw.url}/v1${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

const chat = { messages: [{ role: 'user', content: 'many answers please' }] };

describe('the reservation covers every choice', () => {
  it('chat with n=8 under max_tokens 1 on a 5.00 balance is refused 402 before reaching the provider', async () => {
    const c = await prepaid('5');
    const before = upstream.requests.length;
    const res = await post('/chat/completions', c.key, { model: c.model, ...chat, max_tokens: 1, n: 8 });
    expect(res.status).toBe(402);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('insufficient_quota');
    expect(upstream.requests.length).toBe(before);
  });

  it('legacy completions with best_of=8, or eight prompts, under max_tokens 1 on a 5.00 balance are refused 402', async () => {
    const c = await prepaid('5');
    const bestOf = await post('/completions', c.key, { model: c.model, prompt: 'x', max_tokens: 1, best_of: 8 });
    expect(bestOf.status).toBe(402);
    const d = await prepaid('5');
    const prompts = await post('/completions', d.key, { model: d.model, prompt: Array(8).fill('x'), max_tokens: 1 });
    expect(prompts.status).toBe(402);
  });

  it('counts past their bounds are refused 400 in OpenAI shape', async () => {
    const c = await prepaid('5');
    for (const extra of [{ n: 129 }, { n: 0 }, { max_tokens: 10 ** 12 }, { max_completion_tokens: -1 }]) {
      const res = await post('/chat/completions', c.key, { model: c.model, ...chat, ...extra });
      expect(res.status, JSON.stringify(extra)).toBe(400);
      const body = (await res.json()) as { error: { type: string; param: string } };
      expect(body.error.type).toBe('invalid_request_error');
      expect(Object.keys(extra)).toContain(body.error.param);
    }
  });
});

describe('a prepaid request without an output limit', () => {
  it('is sent to the provider with the reserved limit, so the account cannot spend past its balance', async () => {
    const c = await prepaid('10');
    // The provider would write 1000 tokens if nobody stopped it; it honours a limit it is given.
    upstream.setDefault({ kind: 'ok', completionTokens: 1_000, honorMaxTokens: true });
    try {
      const start = upstream.requests.length;
      const statuses = [
        (await post('/chat/completions', c.key, { model: c.model, ...chat })).status,
        (await post('/responses', c.key, { model: c.model, input: 'a long essay' })).status,
        (await post('/completions', c.key, { model: c.model, prompt: 'Once upon a time' })).status,
        (await post('/chat/completions', c.key, { model: c.model, ...chat })).status,
      ];
      const sent = upstream.requests.slice(start).map((r) => r.body);
      expect(sent.map((b) => b.max_completion_tokens ?? b.max_output_tokens ?? b.max_tokens)).toEqual([DEFAULT_BOUND, DEFAULT_BOUND, DEFAULT_BOUND]);
      // Chat carries the bound under both names: an OpenAI-compatible server that ignores max_completion_tokens honours max_tokens.
      expect(sent[0]).toMatchObject({ max_completion_tokens: DEFAULT_BOUND, max_tokens: DEFAULT_BOUND });
      expect(sent[1].max_output_tokens).toBe(DEFAULT_BOUND);
      expect(sent[2].max_tokens).toBe(DEFAULT_BOUND);
      // Three requests of 3.00 each fit in 10.00; a fourth cannot be covered.
      expect(statuses).toEqual([200, 200, 200, 402]);

      await gw.batcher.flush();
      const { total } = (await db('usage_events').where({ account_id: c.accountId }).sum({ total: 'cost' }).first()) as { total: string | null };
      // PREPAID_OVERDRAFT_ALLOWANCE is 0: what was spent never exceeds the 10.00 the account had.
      expect(new Money(total ?? '0').toFixed()).toBe('9');
    } finally {
      upstream.setDefault({ kind: 'ok' });
    }
  });
});
