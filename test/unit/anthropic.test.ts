import { describe, expect, it } from 'vitest';
import { computeCost, costString } from '../../src/metering/price.rules';
import { buildInvoice } from '../../src/invoicing/invoice.rules';
import { normalizeUsage } from '../../src/metering/usage.rules';
import { chatToMessages, MessagesStreamUsage, messagesToChat, UntranslatableRequest } from '../../src/gateway/anthropic/translate';

const PRICE = { inputPerMtok: '3', cachedInputPerMtok: '0.3', outputPerMtok: '15', cacheWritePerMtok: '3.75', cacheWrite1hPerMtok: '6' };

describe('Anthropic usage', () => {
  it('keeps input, cache reads and both lifetimes of cache writes apart', () => {
    const u = normalizeUsage({
      input_tokens: 10,
      cache_read_input_tokens: 500,
      cache_creation_input_tokens: 300,
      cache_creation: { ephemeral_5m_input_tokens: 100, ephemeral_1h_input_tokens: 200 },
      output_tokens: 9,
    });
    expect(u).toEqual({ inputTokens: 10, cacheReadTokens: 500, cacheWriteTokens: 300, cacheWrite1hTokens: 200, outputTokens: 9, reasoningTokens: 0 });
  });

  it('takes the split alone when the total is missing, and never more one-hour writes than writes', () => {
    expect(normalizeUsage({ input_tokens: 1, cache_creation: { ephemeral_5m_input_tokens: 4, ephemeral_1h_input_tokens: 6 }, output_tokens: 0 })).toMatchObject({
      cacheWriteTokens: 10,
      cacheWrite1hTokens: 6,
    });
    expect(normalizeUsage({ input_tokens: 1, cache_creation_input_tokens: 3, cache_creation: { ephemeral_1h_input_tokens: 6 }, output_tokens: 0 })).toMatchObject({
      cacheWriteTokens: 3,
      cacheWrite1hTokens: 3,
    });
  });

  it('prices each lifetime at its own price; unset prices fall back to the input price', () => {
    const u = { inputTokens: 10, cacheReadTokens: 500, cacheWriteTokens: 300, cacheWrite1hTokens: 200, outputTokens: 9, reasoningTokens: 0 };
    const c = computeCost(u, PRICE);
    // 10x3 + 500x0.3 + 100x3.75 + 200x6 + 9x15 = 30 + 150 + 375 + 1200 + 135 per million
    expect(costString(c.total)).toBe('0.00189');
    expect(costString(c.cacheWrite)).toBe('0.000375');
    expect(costString(c.cacheWrite1h)).toBe('0.0012');
    const legacy = computeCost(u, { inputPerMtok: '3', cachedInputPerMtok: '0.3', outputPerMtok: '15' });
    // writes at the input price: 300 x 3
    expect(costString(legacy.total)).toBe(costString(computeCost({ ...u, cacheWrite1hTokens: 0, inputTokens: 310, cacheWriteTokens: 0 }, PRICE).total));
  });

  it('the final stream usage is message_delta over message_start, never their sum', () => {
    const s = new MessagesStreamUsage();
    s.see({ type: 'message_start', message: { usage: { input_tokens: 20, cache_read_input_tokens: 5, cache_creation_input_tokens: 7, output_tokens: 1 } } });
    s.see({ type: 'message_delta', usage: { output_tokens: 30 } });
    expect(normalizeUsage(s.final(), 'anthropic')).toMatchObject({ inputTokens: 20, cacheReadTokens: 5, cacheWriteTokens: 7, outputTokens: 30 });
    s.see({ type: 'message_delta', usage: { input_tokens: 20, cache_read_input_tokens: 5, cache_creation_input_tokens: 7, output_tokens: 31 } });
    expect(normalizeUsage(s.final(), 'anthropic')).toMatchObject({ inputTokens: 20, cacheReadTokens: 5, cacheWriteTokens: 7, outputTokens: 31 });
  });
});

describe('invoice lines for cache writes', () => {
  const base = { model: 'claude', priceId: 'p1', inputTokens: 1_000_000, cacheReadTokens: 0, outputTokens: 0, late: false, usagePeriod: '2026-11' };
  const tax = { kind: 'none', rate: '0', country: 'US', note: null } as never;

  it('bills five-minute and one-hour writes on their own lines at their prices', () => {
    const inv = buildInvoice({
      currency: 'USD',
      plan: 'postpaid',
      tax,
      usage: [{ ...base, cacheWriteTokens: 3_000_000, cacheWrite1hTokens: 1_000_000 }],
      prices: new Map([['p1', PRICE]]),
    });
    expect(inv.lines.map((l) => [l.kind, l.quantity, l.amount])).toEqual([
      ['input', 1_000_000, '3.00'],
      ['cache_write', 2_000_000, '7.50'],
      ['cache_write_1h', 1_000_000, '6.00'],
    ]);
  });

  it('without cache-write prices, writes stay input tokens as before', () => {
    const inv = buildInvoice({
      currency: 'USD',
      plan: 'postpaid',
      tax,
      usage: [{ ...base, cacheWriteTokens: 3_000_000, cacheWrite1hTokens: 1_000_000 }],
      prices: new Map([['p1', { inputPerMtok: '3', cachedInputPerMtok: null, outputPerMtok: '15' }]]),
    });
    expect(inv.lines.map((l) => [l.kind, l.quantity, l.amount])).toEqual([['input', 4_000_000, '12.00']]);
  });
});

describe('translation refuses what it cannot carry', () => {
  const body = { model: 'm', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] };
  const toChat = (b: object) => () => messagesToChat(b, { upstreamModel: 'u', outputLimitParams: ['max_completion_tokens'] });

  it('Messages -> Chat', () => {
    expect(toChat({ ...body, top_k: 3 })).toThrow(UntranslatableRequest);
    expect(toChat({ ...body, thinking: { type: 'enabled', budget_tokens: 1024 } })).toThrow(/thinking/);
    expect(toChat({ ...body, messages: [{ role: 'user', content: [{ type: 'document', source: {} }] }] })).toThrow(/'document'/);
    expect(toChat({ ...body, tools: [{ type: 'web_search_20250305', name: 'web_search' }] })).toThrow(/web_search_20250305/);
    expect(toChat(body)()).toEqual({ model: 'u', messages: [{ role: 'user', content: 'x' }], max_completion_tokens: 5 });
  });

  it('Chat -> Messages', () => {
    const chat = { model: 'm', messages: [{ role: 'user', content: 'x' }] };
    const toMessages = (b: object) => () => chatToMessages(b, { upstreamModel: 'u', maxTokens: 10 });
    expect(toMessages({ ...chat, n: 2 })).toThrow(UntranslatableRequest);
    expect(toMessages({ ...chat, response_format: { type: 'json_object' } })).toThrow(/response_format/);
    expect(toMessages({ ...chat, messages: [{ role: 'user', content: [{ type: 'input_audio', input_audio: {} }] }] })).toThrow(/input_audio/);
    expect(toMessages({ ...chat, stop: 'END' })()).toMatchObject({ max_tokens: 10, stop_sequences: ['END'], messages: [{ role: 'user', content: [{ type: 'text', text: 'x' }] }] });
  });
});
