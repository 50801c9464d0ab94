import { describe, expect, it } from 'vitest';
import { computeCost, costString, reservationBound, type TokenPrice } from '../../src/metering/price.rules';
import { Money, roundToMinorUnit } from '../../src/shared/money.rules';
import { normalizeUsage, ZERO_USAGE, type NormalizedUsage } from '../../src/metering/usage.rules';

const GPT4O: TokenPrice = { inputPerMtok: '2.50', cachedInputPerMtok: '1.25', outputPerMtok: '10.00' };
const usage = (u: Partial<NormalizedUsage>): NormalizedUsage => ({ ...ZERO_USAGE, ...u });
const strings = (c: ReturnType<typeof computeCost>) => ({
  input: costString(c.input),
  cacheRead: costString(c.cacheRead),
  cacheWrite: costString(c.cacheWrite),
  output: costString(c.output),
  total: costString(c.total),
});

describe('computeCost', () => {
  it('prices input exactly: 1,234,567 tokens at 0.15 per Mtok is 0.18518505', () => {
    const c = computeCost(usage({ inputTokens: 1_234_567 }), { inputPerMtok: '0.15', cachedInputPerMtok: null, outputPerMtok: '0.60' });
    expect(costString(c.total)).toBe('0.18518505');
  });

  it('prices cache reads at the cached price when the price has one', () => {
    const u = normalizeUsage({ prompt_tokens: 2006, completion_tokens: 300, prompt_tokens_details: { cached_tokens: 1920 } })!;
    expect(strings(computeCost(u, GPT4O))).toEqual({ input: '0.000215', cacheRead: '0.0024', cacheWrite: '0', output: '0.003', total: '0.005615' });
  });

  it('prices cache reads at the input price when there is no cached price', () => {
    const u = usage({ inputTokens: 86, cacheReadTokens: 1920, outputTokens: 300 });
    expect(strings(computeCost(u, { ...GPT4O, cachedInputPerMtok: null }))).toEqual({
      input: '0.000215', cacheRead: '0.0048', cacheWrite: '0', output: '0.003', total: '0.008015',
    });
  });

  it('prices Anthropic cache writes at the input price, each token once', () => {
    const u = normalizeUsage({ input_tokens: 50, cache_read_input_tokens: 10_000, cache_creation_input_tokens: 2_000, output_tokens: 400 })!;
    const c = computeCost(u, { inputPerMtok: '3', cachedInputPerMtok: '0.30', outputPerMtok: '15' });
    expect(strings(c)).toEqual({ input: '0.00015', cacheRead: '0.003', cacheWrite: '0.006', output: '0.006', total: '0.01515' });
  });

  it('does not price reasoning tokens on top of output', () => {
    const c = computeCost(usage({ inputTokens: 120, outputTokens: 1500, reasoningTokens: 1280 }), GPT4O);
    expect(costString(c.output)).toBe('0.015');
    expect(costString(c.total)).toBe('0.0153');
  });

  it('keeps sub-cent costs at full precision (no rounding to cents)', () => {
    const c = computeCost(usage({ inputTokens: 7 }), { inputPerMtok: '0.15', cachedInputPerMtok: null, outputPerMtok: '0' });
    expect(costString(c.total)).toBe('0.00000105');
    expect(roundToMinorUnit(c.total, 'USD').toFixed()).toBe('0'); // rounding is money.ts's job, at charge time
  });

  it('has no float error', () => {
    // 0.1 + 0.2 as floats is 0.30000000000000004.
    const c = computeCost(usage({ inputTokens: 1, outputTokens: 2 }), { inputPerMtok: '0.1', cachedInputPerMtok: null, outputPerMtok: '0.1' });
    expect(costString(c.total)).toBe('0.0000003');
    const big = computeCost(usage({ inputTokens: 987_654_321, outputTokens: 123_456_789 }), { inputPerMtok: '0.07', cachedInputPerMtok: null, outputPerMtok: '0.29' });
    expect(costString(big.total)).toBe('104.93827128'); // 69.13580247 + 35.80246881
  });

  it('rounds half-up at the 12th decimal place, and only there', () => {
    const price = (p: string): TokenPrice => ({ inputPerMtok: p, cachedInputPerMtok: null, outputPerMtok: '0' });
    expect(costString(computeCost(usage({ inputTokens: 1 }), price('0.0000005')).total)).toBe('0.000000000001');
    expect(costString(computeCost(usage({ inputTokens: 1 }), price('0.00000049')).total)).toBe('0');
    expect(costString(computeCost(usage({ inputTokens: 3 }), price('0.000001')).total)).toBe('0.000000000003');
  });

  it('costs nothing for no usage', () => {
    expect(strings(computeCost(ZERO_USAGE, GPT4O))).toEqual({ input: '0', cacheRead: '0', cacheWrite: '0', output: '0', total: '0' });
  });

  it('refuses bad prices and bad usage instead of producing NaN', () => {
    expect(() => computeCost(ZERO_USAGE, { ...GPT4O, inputPerMtok: '-1' })).toThrow(/must not be negative/);
    expect(() => computeCost(ZERO_USAGE, { ...GPT4O, outputPerMtok: '1e3' })).toThrow(/not a decimal amount/);
    expect(() => computeCost(ZERO_USAGE, { ...GPT4O, cachedInputPerMtok: '' })).toThrow(/not a decimal amount/);
    expect(() => computeCost(usage({ inputTokens: Number.NaN }), GPT4O)).toThrow(/inputTokens/);
    expect(() => computeCost(usage({ outputTokens: 1.5 }), GPT4O)).toThrow(/outputTokens/);
  });

  it('prices by the price given, not by one parsed earlier (parsed prices are cached by value)', () => {
    const price: TokenPrice = { inputPerMtok: '1', cachedInputPerMtok: null, outputPerMtok: '2' };
    const u = usage({ inputTokens: 1_000_000, cacheReadTokens: 1_000_000, outputTokens: 1_000_000 });
    expect(costString(computeCost(u, price).total)).toBe('4');
    price.outputPerMtok = '3';
    expect(costString(computeCost(u, price).total)).toBe('5');
    // A cached price set later must not be confused with "no cached price".
    expect(costString(computeCost(u, { ...price, cachedInputPerMtok: '0.5' }).total)).toBe('4.5');
    expect(() => computeCost(u, { ...price, inputPerMtok: '-1' })).toThrow(/must not be negative/);
    expect(() => computeCost(u, { ...price, inputPerMtok: '-1' })).toThrow(/must not be negative/);
  });
});

describe('costString', () => {
  it('is canonical: at most 12 places, no exponent, no trailing zeros, never -0', () => {
    expect(costString(new Money('1e-12'))).toBe('0.000000000001');
    expect(costString(new Money('1e-7'))).toBe('0.0000001');
    expect(costString(new Money('1.50'))).toBe('1.5');
    expect(costString(new Money('123456789.1234567890125'))).toBe('123456789.123456789013');
    expect(costString(new Money('1e21'))).toBe('1000000000000000000000');
    expect(costString(new Money('-0.0000000000001'))).toBe('0');
    expect(costString(new Money(0))).toBe('0');
  });
});

describe('reservationBound', () => {
  const SONNET: TokenPrice = { inputPerMtok: '3', cachedInputPerMtok: '0.30', outputPerMtok: '15', cacheWritePerMtok: '3.75', cacheWrite1hPerMtok: '6' };

  it('holds at least what a prompt written to the one-hour cache costs', () => {
    const written = computeCost(usage({ cacheWriteTokens: 2_048, cacheWrite1hTokens: 2_048, outputTokens: 100 }), SONNET).total;
    const bound = reservationBound(SONNET, 2_048, 100);
    expect(costString(written)).toBe('0.013788');
    expect(costString(bound)).toBe('0.013788'); // 2,048 × 6 / 1e6 + 100 × 15 / 1e6
    expect(bound.gte(written)).toBe(true);
  });

  it('holds at least what a five-minute cache write costs when there is no one-hour price', () => {
    const price: TokenPrice = { ...SONNET, cacheWrite1hPerMtok: null };
    const written = computeCost(usage({ cacheWriteTokens: 1_024 }), price).total;
    expect(costString(reservationBound(price, 1_000, 0))).toBe('0.00384'); // 1,024 × 3.75 / 1e6
    expect(reservationBound(price, 1_000, 0).gte(written)).toBe(true);
  });

  it('prices input at the input price when no cache price is higher', () => {
    expect(costString(reservationBound(GPT4O, 1, 10))).toBe('0.00266'); // 1,024 × 2.5 / 1e6 + 10 × 10 / 1e6
    expect(costString(reservationBound({ ...GPT4O, cachedInputPerMtok: null }, 0, 0))).toBe('0');
  });
});
