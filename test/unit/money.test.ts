import { describe, expect, it } from 'vitest';
import { formatMoney, Money, parseAmount, roundToMinorUnit, toAmountString } from '../../src/shared/money.rules';

describe('money', () => {
  it('rounds half-up to the minor unit, in one place', () => {
    expect(roundToMinorUnit(parseAmount('0.005'), 'USD').toFixed()).toBe('0.01');
    expect(roundToMinorUnit(parseAmount('0.0049999'), 'USD').toFixed()).toBe('0');
    expect(roundToMinorUnit(parseAmount('-0.005'), 'USD').toFixed()).toBe('-0.01');
    expect(roundToMinorUnit(parseAmount('2.675'), 'USD').toFixed()).toBe('2.68'); // a float would give 2.67
  });

  it('keeps sub-cent precision until rounding', () => {
    const perToken = parseAmount('0.15').div(1_000_000);
    expect(toAmountString(perToken.mul(7))).toBe('0.00000105');
  });

  it('does not accept numbers, exponents or junk as amounts', () => {
    for (const bad of ['1e5', '', ' ', 'abc', '1.', '.5', 'NaN', 'Infinity', '1,5']) {
      expect(() => parseAmount(bad)).toThrow(/not a decimal amount/);
    }
    expect(() => parseAmount(12 as unknown as string)).toThrow();
  });

  it('adds exactly where floats do not', () => {
    expect(parseAmount('0.1').plus('0.2').eq(new Money('0.3'))).toBe(true);
  });

  it('formats for people with fixed minor digits', () => {
    expect(formatMoney(parseAmount('12.5'), 'usd')).toBe('12.50 USD');
    expect(() => formatMoney(parseAmount('1'), 'XYZ')).toThrow(/unsupported currency/);
  });
});
