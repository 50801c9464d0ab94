import { describe, expect, it } from 'vitest';
import { normalizeUsage, totalInputTokens, ZERO_USAGE } from '../../src/metering/usage.rules';

describe('normalizeUsage', () => {
  it('OpenAI chat: cached tokens are taken out of prompt_tokens, never counted twice', () => {
    const u = normalizeUsage({
      prompt_tokens: 2006,
      completion_tokens: 300,
      total_tokens: 2306,
      prompt_tokens_details: { cached_tokens: 1920, audio_tokens: 0 },
      completion_tokens_details: { reasoning_tokens: 0 },
    });
    expect(u).toEqual({ inputTokens: 86, cacheReadTokens: 1920, cacheWriteTokens: 0, outputTokens: 300, reasoningTokens: 0 });
    expect(totalInputTokens(u!)).toBe(2006); // nothing lost either
  });

  it('OpenAI chat with reasoning: reasoning stays inside output', () => {
    const u = normalizeUsage({
      prompt_tokens: 120,
      completion_tokens: 1500,
      total_tokens: 1620,
      prompt_tokens_details: { cached_tokens: 0 },
      completion_tokens_details: { reasoning_tokens: 1280, accepted_prediction_tokens: 0 },
    });
    expect(u).toEqual({ inputTokens: 120, cacheReadTokens: 0, cacheWriteTokens: 0, outputTokens: 1500, reasoningTokens: 1280 });
  });

  it('OpenAI chat without details', () => {
    expect(normalizeUsage({ prompt_tokens: 9, completion_tokens: 12, total_tokens: 21 })).toEqual({
      inputTokens: 9, cacheReadTokens: 0, cacheWriteTokens: 0, outputTokens: 12, reasoningTokens: 0,
    });
  });

  it('OpenAI embeddings: input only', () => {
    expect(normalizeUsage({ prompt_tokens: 8, total_tokens: 8 })).toEqual({
      inputTokens: 8, cacheReadTokens: 0, cacheWriteTokens: 0, outputTokens: 0, reasoningTokens: 0,
    });
  });

  it('OpenAI Responses API: input_tokens includes cached_tokens', () => {
    const u = normalizeUsage({
      input_tokens: 5000,
      input_tokens_details: { cached_tokens: 4096 },
      output_tokens: 900,
      output_tokens_details: { reasoning_tokens: 640 },
      total_tokens: 5900,
    });
    expect(u).toEqual({ inputTokens: 904, cacheReadTokens: 4096, cacheWriteTokens: 0, outputTokens: 900, reasoningTokens: 640 });
    expect(totalInputTokens(u!)).toBe(5000);
  });

  it('Anthropic: cache read and write are reported beside input_tokens and added, not subtracted', () => {
    const raw = { input_tokens: 50, cache_read_input_tokens: 10_000, cache_creation_input_tokens: 2_000, output_tokens: 400 };
    const u = normalizeUsage(raw);
    expect(u).toEqual({ inputTokens: 50, cacheReadTokens: 10_000, cacheWriteTokens: 2_000, outputTokens: 400, reasoningTokens: 0 });
    expect(totalInputTokens(u!)).toBe(12_050);
    expect(normalizeUsage(raw, 'anthropic')).toEqual(u);
  });

  it('auto-detects the convention from Anthropic cache fields, even when they are zero', () => {
    expect(normalizeUsage({ input_tokens: 100, cache_read_input_tokens: 0, output_tokens: 5 })?.inputTokens).toBe(100);
    expect(normalizeUsage({ input_tokens: 100, cache_creation_input_tokens: 30, output_tokens: 5 })).toMatchObject({ inputTokens: 100, cacheWriteTokens: 30 });
    // Without cache fields both conventions read the same.
    expect(normalizeUsage({ input_tokens: 100, output_tokens: 5 })).toEqual(normalizeUsage({ input_tokens: 100, output_tokens: 5 }, 'anthropic'));
  });

  it('an explicit convention decides how input_tokens is read', () => {
    const raw = { input_tokens: 1000, cache_read_input_tokens: 600, output_tokens: 1 };
    expect(normalizeUsage(raw, 'anthropic')).toMatchObject({ inputTokens: 1000, cacheReadTokens: 600 });
    expect(normalizeUsage(raw, 'openai')).toMatchObject({ inputTokens: 400, cacheReadTokens: 600 });
    // Under 'anthropic', OpenAI's details (which describe tokens inside input_tokens) are not added on top.
    expect(normalizeUsage({ input_tokens: 1000, input_tokens_details: { cached_tokens: 600 }, output_tokens: 1 }, 'anthropic')).toMatchObject({
      inputTokens: 1000, cacheReadTokens: 0,
    });
    // prompt_tokens is OpenAI's name and always includes the cache.
    expect(normalizeUsage({ prompt_tokens: 1000, prompt_tokens_details: { cached_tokens: 600 } }, 'anthropic')).toMatchObject({ inputTokens: 400, cacheReadTokens: 600 });
  });

  it('clamps cache counts into the inclusive total so input never goes negative', () => {
    expect(normalizeUsage({ prompt_tokens: 100, completion_tokens: 1, prompt_tokens_details: { cached_tokens: 250 } })).toEqual({
      inputTokens: 0, cacheReadTokens: 100, cacheWriteTokens: 0, outputTokens: 1, reasoningTokens: 0,
    });
    expect(normalizeUsage({ input_tokens: 100, cache_read_input_tokens: 80, cache_creation_input_tokens: 50 }, 'openai')).toMatchObject({
      inputTokens: 0, cacheReadTokens: 80, cacheWriteTokens: 20,
    });
    expect(normalizeUsage({ completion_tokens: 10, completion_tokens_details: { reasoning_tokens: 99 } })?.reasoningTokens).toBe(10);
  });

  it('treats garbage counts as missing, never NaN', () => {
    const u = normalizeUsage({
      prompt_tokens: 40,
      completion_tokens: -5,
      total_tokens: Number.NaN,
      prompt_tokens_details: { cached_tokens: 1.5 },
      completion_tokens_details: { reasoning_tokens: '7' },
    });
    // Flagged, so the record says its counts were clamped (usage_clamped) instead of passing for the provider's word.
    expect(u).toEqual({ inputTokens: 40, cacheReadTokens: 0, cacheWriteTokens: 0, outputTokens: 0, reasoningTokens: 0, invalid: true });
    expect(normalizeUsage({ prompt_tokens: Infinity, completion_tokens: 3 })).toEqual({ ...ZERO_USAGE, outputTokens: 3, invalid: true });
    expect(normalizeUsage({ prompt_tokens: -5, completion_tokens: 3 })).toEqual({ ...ZERO_USAGE, outputTokens: 3, invalid: true });
    expect(normalizeUsage({ prompt_tokens: 4, completion_tokens: 3, total_tokens: 7 })).not.toHaveProperty('invalid');
    expect(normalizeUsage({ prompt_tokens: 2 ** 53, completion_tokens: 3 })?.inputTokens).toBe(0);
    expect(normalizeUsage({ prompt_tokens: -0, completion_tokens: 0 })?.inputTokens).toBe(0);
    expect(Object.is(normalizeUsage({ prompt_tokens: -0 })?.inputTokens, 0)).toBe(true);
    expect(normalizeUsage({ input_tokens: 7, cache_read_input_tokens: null, output_tokens: 1 })).toMatchObject({ inputTokens: 7, cacheReadTokens: 0 });
    expect(normalizeUsage({ prompt_tokens: 10, prompt_tokens_details: 'lots' })).toMatchObject({ inputTokens: 10, cacheReadTokens: 0 });
  });

  it('returns undefined when there is nothing countable', () => {
    for (const raw of [undefined, null, 42, 'usage', [], [1, 2], {}, { total_tokens: 100 }, { prompt_tokens: 'x', completion_tokens: null }, { foo: 1 }]) {
      expect(normalizeUsage(raw)).toBeUndefined();
    }
  });

  it('derives output from total_tokens only when no output count is given', () => {
    expect(normalizeUsage({ prompt_tokens: 10, total_tokens: 25 })?.outputTokens).toBe(15);
    expect(normalizeUsage({ prompt_tokens: 10, total_tokens: 4 })?.outputTokens).toBe(0);
    expect(normalizeUsage({ prompt_tokens: 10, completion_tokens: 2, total_tokens: 999 })?.outputTokens).toBe(2);
  });

  it('ZERO_USAGE is all zeros and cannot be mutated', () => {
    expect(ZERO_USAGE).toEqual({ inputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0, outputTokens: 0, reasoningTokens: 0 });
    expect(Object.isFrozen(ZERO_USAGE)).toBe(true);
    expect(totalInputTokens(ZERO_USAGE)).toBe(0);
  });
});
