import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { computeCost, costString } from '../../src/metering/price.rules';
import { Money } from '../../src/shared/money.rules';
import { testConfig, testDb } from '../helpers/env';
import type { FakeAnthropic } from '../helpers/fakeAnthropic';
import type { FakeUpstream } from '../helpers/fakeUpstream';
import { startAnthropicUpstreams, startTestGateway, type Customer } from '../helpers/gateway';

/**
 * The same answer costs the same however it travels: streamed or not, through
 * native passthrough or translation, from a Messages client or a chat client,
 * with and without cache reads and both lifetimes of cache writes. Each cost
 * is the one computed by hand from the token counts at the price in force.
 */
const PRICE = { inputPerMtok: '3', cachedInputPerMtok: '0.3', cacheWritePerMtok: '3.75', cacheWrite1hPerMtok: '6', outputPerMtok: '15' };
const db = testDb(testConfig());
let anthropicUp: FakeAnthropic;
let openaiUp: FakeUpstream;
let gw: Awaited<ReturnType<typeof startTestGateway>>;
let customer: Customer;
let anthropic: Anthropic;
let openai: OpenAI;
let claude: string;
let gpt: string;

beforeAll(async () => {
  const up = await startAnthropicUpstreams(db);
  ({ anthropicUp, openaiUp, customer } = up);
  const { ops, tag, provider } = up;
  claude = `claude-cost-${tag}`;
  await ops.addModel({ name: claude, provider: provider.name, upstreamModel: 'claude-fake-1', ...PRICE, effectiveFrom: '2020-01-01T00:00:00Z' });
  gpt = `gpt-cost-${tag}`;
  await ops.addModel({ name: gpt, provider: customer.provider, upstreamModel: 'fake-model', ...PRICE, effectiveFrom: '2020-01-01T00:00:00Z' });
  gw = await startTestGateway();
  anthropic = new Anthropic({ apiKey: customer.key, baseURL: gw.url, maxRetries: 0 });
  openai = new OpenAI({ apiKey: customer.key, baseURL: `${gw.url}/v1`, maxRetries: 0 });
});
afterAll(async () => {
  await gw?.stop();
  await anthropicUp?.close();
  await openaiUp?.close();
  await db.destroy();
});

interface Tokens {
  input: number;
  read: number;
  write5m: number;
  write1h: number;
  output: number;
}

const expected = (t: Tokens) =>
  costString(
    computeCost({ inputTokens: t.input, cacheReadTokens: t.read, cacheWriteTokens: t.write5m + t.write1h, cacheWrite1hTokens: t.write1h, outputTokens: t.output, reasoningTokens: 0 }, PRICE)
      .total,
  );

async function costOf(requestId: string | null): Promise<{ cost: string; tokens: Tokens }> {
  await gw.batcher.flush();
  const e = await db('usage_events').where({ request_id: requestId }).first();
  expect(e.usage_estimated).toBe(false);
  return {
    cost: costString(new Money(e.cost)),
    tokens: { input: Number(e.input_tokens), read: Number(e.cache_read_tokens), write5m: Number(e.cache_write_tokens) - Number(e.cache_write_1h_tokens), write1h: Number(e.cache_write_1h_tokens), output: Number(e.output_tokens) },
  };
}

const ask = { max_tokens: 50, messages: [{ role: 'user' as const, content: 'same question' }] };

/** The four ways to an Anthropic provider. */
async function viaAnthropic(t: Tokens) {
  const behaviour = { kind: 'ok' as const, inputTokens: t.input, cacheReadTokens: t.read, cacheWrite5mTokens: t.write5m, cacheWrite1hTokens: t.write1h, outputTokens: t.output };
  const ids: (string | null)[] = [];
  anthropicUp.enqueue(behaviour);
  ids.push((await anthropic.messages.create({ model: claude, ...ask }).withResponse()).response.headers.get('x-request-id'));
  anthropicUp.enqueue(behaviour);
  const stream = anthropic.messages.stream({ model: claude, ...ask });
  await stream.finalMessage();
  ids.push((await stream.withResponse()).response.headers.get('x-request-id'));
  anthropicUp.enqueue(behaviour);
  ids.push((await openai.chat.completions.create({ model: claude, ...ask }).withResponse()).response.headers.get('x-request-id'));
  anthropicUp.enqueue(behaviour);
  const chat = await openai.chat.completions.create({ model: claude, ...ask, stream: true }).withResponse();
  for await (const chunk of chat.data) void chunk;
  ids.push(chat.response.headers.get('x-request-id'));
  return Promise.all(ids.map(costOf));
}

/** The four ways to an OpenAI-compatible provider (which reports no cache writes). */
async function viaOpenAI(t: Tokens) {
  const behaviour = { kind: 'ok' as const, promptTokens: t.input + t.read, cachedTokens: t.read, completionTokens: t.output };
  const ids: (string | null)[] = [];
  openaiUp.enqueue(behaviour);
  ids.push((await anthropic.messages.create({ model: gpt, ...ask }).withResponse()).response.headers.get('x-request-id'));
  openaiUp.enqueue(behaviour);
  const stream = anthropic.messages.stream({ model: gpt, ...ask });
  await stream.finalMessage();
  ids.push((await stream.withResponse()).response.headers.get('x-request-id'));
  openaiUp.enqueue(behaviour);
  ids.push((await openai.chat.completions.create({ model: gpt, ...ask }).withResponse()).response.headers.get('x-request-id'));
  openaiUp.enqueue(behaviour);
  const chat = await openai.chat.completions.create({ model: gpt, ...ask, stream: true }).withResponse();
  for await (const chunk of chat.data) void chunk;
  ids.push(chat.response.headers.get('x-request-id'));
  return Promise.all(ids.map(costOf));
}

const CASES: [string, Tokens][] = [
  ['no cache', { input: 1200, read: 0, write5m: 0, write1h: 0, output: 340 }],
  ['cache reads', { input: 40, read: 9000, write5m: 0, write1h: 0, output: 120 }],
  ['five-minute cache writes', { input: 40, read: 0, write5m: 5000, write1h: 0, output: 120 }],
  ['one-hour cache writes', { input: 40, read: 0, write5m: 0, write1h: 5000, output: 120 }],
  ['reads and both writes', { input: 17, read: 7000, write5m: 1500, write1h: 2500, output: 77 }],
];

describe('one answer, one cost', () => {
  for (const [name, tokens] of CASES) {
    it(`${name}: Messages and chat clients, streamed and not, through an Anthropic provider`, async () => {
      const all = await viaAnthropic(tokens);
      for (const r of all) {
        expect(r.tokens).toEqual(tokens);
        expect(r.cost).toBe(expected(tokens));
      }
    });
    if (tokens.write5m === 0 && tokens.write1h === 0) {
      it(`${name}: the same through an OpenAI-compatible provider`, async () => {
        const all = await viaOpenAI(tokens);
        for (const r of all) {
          expect(r.tokens).toEqual(tokens);
          expect(r.cost).toBe(expected(tokens));
        }
      });
    }
  }
});
