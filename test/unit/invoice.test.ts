import Decimal from 'decimal.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  billingPeriod,
  buildInvoice,
  dueDate,
  InvoiceDataError,
  periodLastDay,
  type LinePrice,
  type UsageAggregate,
} from '../../src/invoicing/invoice.rules';
import type { TaxTreatment } from '../../src/invoicing/tax.rules';

const NO_TAX: TaxTreatment = { kind: 'outside_scope', rate: '0', country: 'US', note: 'Outside the scope of EU VAT.' };
const DE_VAT: TaxTreatment = { kind: 'domestic', rate: '0.19', country: 'DE', note: null };

function usage(partial: Partial<UsageAggregate> & { model: string; priceId: string }): UsageAggregate {
  return { inputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0, outputTokens: 0, late: false, usagePeriod: '2026-11', ...partial };
}

function prices(entries: Record<string, LinePrice>): Map<string, LinePrice> {
  return new Map(Object.entries(entries));
}

const P = prices({
  'p-mini': { inputPerMtok: '0.15', cachedInputPerMtok: '0.075', outputPerMtok: '0.60' },
  'p-big': { inputPerMtok: '2.50', cachedInputPerMtok: null, outputPerMtok: '10.00' },
  'p-half': { inputPerMtok: '1.5', cachedInputPerMtok: null, outputPerMtok: '0.5' },
});

describe('buildInvoice: lines', () => {
  it('rounds each line half-up to the cent from a sub-cent amount', () => {
    const inv = buildInvoice({
      currency: 'USD',
      usage: [
        usage({ model: 'gpt-mini', priceId: 'p-mini', inputTokens: 1_234_567 }), // 0.18518505 -> 0.19
        usage({ model: 'gpt-half', priceId: 'p-half', inputTokens: 3_333, outputTokens: 10_000 }), // 0.0049995 -> 0.00; 0.005 -> 0.01
      ],
      prices: P,
      tax: NO_TAX,
      plan: 'postpaid',
    });
    expect(inv.lines.map((l) => [l.description, l.quantity, l.unitPricePerMtok, l.amount])).toEqual([
      ['gpt-half input tokens', 3_333, '1.5', '0.00'], // 0.0049995 rounds down: half-up is exact, not "nearly half"
      ['gpt-half output tokens', 10_000, '0.5', '0.01'], // exactly 0.005 -> 0.01
      ['gpt-mini input tokens', 1_234_567, '0.15', '0.19'],
    ]);
    expect(inv.lines.map((l) => l.position)).toEqual([1, 2, 3]);
    expect(inv.totals.subtotal).toBe('0.20');
    expect(inv.currency).toBe('USD');
  });

  it('keeps unit prices at full precision, normalised', () => {
    const inv = buildInvoice({
      currency: 'USD',
      usage: [usage({ model: 'm', priceId: 'x', inputTokens: 1_000_000, outputTokens: 7 })],
      prices: prices({ x: { inputPerMtok: '0.000123456789', cachedInputPerMtok: null, outputPerMtok: '12.500000' } }),
      tax: NO_TAX,
      plan: 'postpaid',
    });
    expect(inv.lines.map((l) => [l.unitPricePerMtok, l.amount])).toEqual([
      ['0.000123456789', '0.00'],
      ['12.5', '0.00'], // 7 × 12.5 / 1e6 = 0.0000875
    ]);
  });

  it('prices cached and uncached input once each, and cache writes at the input price', () => {
    const inv = buildInvoice({
      currency: 'USD',
      usage: [usage({ model: 'gpt-mini', priceId: 'p-mini', inputTokens: 1_000_000, cacheReadTokens: 2_000_000, cacheWriteTokens: 500_000, outputTokens: 100_000 })],
      prices: P,
      tax: NO_TAX,
      plan: 'postpaid',
    });
    expect(inv.lines.map((l) => [l.kind, l.quantity, l.unitPricePerMtok, l.amount, l.description])).toEqual([
      ['input', 1_500_000, '0.15', '0.23', 'gpt-mini input tokens'], // 1.5M × 0.15 = 0.225 -> 0.23 (writes at the input price)
      ['cached_input', 2_000_000, '0.075', '0.15', 'gpt-mini cached input tokens'],
      ['output', 100_000, '0.6', '0.06', 'gpt-mini output tokens'],
    ]);
    expect(inv.totals.subtotal).toBe('0.44');
  });

  it('prices cache reads at the input price when the price has no cached price, still on their own line', () => {
    const inv = buildInvoice({
      currency: 'USD',
      usage: [usage({ model: 'big', priceId: 'p-big', inputTokens: 1_000, cacheReadTokens: 1_000_000 })],
      prices: P,
      tax: NO_TAX,
      plan: 'postpaid',
    });
    expect(inv.lines.map((l) => [l.kind, l.quantity, l.unitPricePerMtok, l.amount])).toEqual([
      ['input', 1_000, '2.5', '0.00'], // 0.0025
      ['cached_input', 1_000_000, '2.5', '2.50'],
    ]);
  });

  it('omits zero-quantity lines, and an invoice without usage is all zeros', () => {
    const inv = buildInvoice({
      currency: 'USD',
      usage: [usage({ model: 'gpt-mini', priceId: 'p-mini', outputTokens: 5 }), usage({ model: 'idle', priceId: 'p-big' })],
      prices: P,
      tax: DE_VAT,
      plan: 'postpaid',
    });
    expect(inv.lines.map((l) => [l.model, l.kind])).toEqual([['gpt-mini', 'output']]);
    const empty = buildInvoice({ currency: 'USD', usage: [], prices: P, tax: DE_VAT, plan: 'postpaid' });
    expect(empty.lines).toEqual([]);
    expect(empty.totals).toEqual({ subtotal: '0.00', taxRate: '0.19', taxAmount: '0.00', total: '0.00', creditsApplied: '0.00', amountDue: '0.00' });
  });

  it('adds up aggregates of the same model, price, kind and period into one line', () => {
    const inv = buildInvoice({
      currency: 'USD',
      usage: [
        usage({ model: 'gpt-mini', priceId: 'p-mini', inputTokens: 400_000 }), // alone: 0.06
        usage({ model: 'gpt-mini', priceId: 'p-mini', inputTokens: 400_000 }), // alone: 0.06
      ],
      prices: P,
      tax: NO_TAX,
      plan: 'postpaid',
    });
    expect(inv.lines).toHaveLength(1);
    expect(inv.lines[0]).toMatchObject({ quantity: 800_000, amount: '0.12' });
  });

  it('gives two price versions of one model two lines each', () => {
    const versions = prices({
      'v1-id': { inputPerMtok: '3', cachedInputPerMtok: null, outputPerMtok: '15', effectiveFrom: '2026-01-01' },
      'a-v2-id': { inputPerMtok: '2', cachedInputPerMtok: null, outputPerMtok: '10', effectiveFrom: '2026-11-15' },
    });
    const inv = buildInvoice({
      currency: 'USD',
      usage: [
        usage({ model: 'claude-x', priceId: 'a-v2-id', inputTokens: 1_000_000, outputTokens: 100_000 }),
        usage({ model: 'claude-x', priceId: 'v1-id', inputTokens: 1_000_000, outputTokens: 100_000 }),
      ],
      prices: versions,
      tax: NO_TAX,
      plan: 'postpaid',
    });
    // The older version first (by effectiveFrom, although its id sorts later).
    expect(inv.lines.map((l) => [l.priceId, l.kind, l.unitPricePerMtok, l.amount])).toEqual([
      ['v1-id', 'input', '3', '3.00'],
      ['v1-id', 'output', '15', '1.50'],
      ['a-v2-id', 'input', '2', '2.00'],
      ['a-v2-id', 'output', '10', '1.00'],
    ]);
    expect(inv.totals.subtotal).toBe('7.50');
  });

  it('labels late lines and orders them by model, regular before late, then kind', () => {
    const inv = buildInvoice({
      currency: 'USD',
      usage: [
        usage({ model: 'gpt-x', priceId: 'p-big', outputTokens: 1_000, late: true, usagePeriod: '2026-10' }),
        usage({ model: 'gpt-x', priceId: 'p-big', inputTokens: 2_000, late: true, usagePeriod: '2026-09' }),
        usage({ model: 'gpt-x', priceId: 'p-big', outputTokens: 1_000, inputTokens: 4_000 }),
        usage({ model: 'a-model', priceId: 'p-mini', outputTokens: 1_000_000, late: true, usagePeriod: '2026-10' }),
        usage({ model: 'gpt-x', priceId: 'p-big', inputTokens: 1_000, late: true, usagePeriod: '2026-10' }),
      ],
      prices: P,
      tax: NO_TAX,
      plan: 'postpaid',
    });
    expect(inv.lines.map((l) => [l.description, l.late, l.usagePeriod, l.amount])).toEqual([
      ['Late usage from 2026-10: a-model output tokens', true, '2026-10', '0.60'],
      ['gpt-x input tokens', false, '2026-11', '0.01'],
      ['gpt-x output tokens', false, '2026-11', '0.01'],
      ['Late usage from 2026-09: gpt-x input tokens', true, '2026-09', '0.01'],
      ['Late usage from 2026-10: gpt-x input tokens', true, '2026-10', '0.00'],
      ['Late usage from 2026-10: gpt-x output tokens', true, '2026-10', '0.01'],
    ]);
  });

  it('refuses a usage aggregate whose price is missing', () => {
    const build = () =>
      buildInvoice({ currency: 'USD', usage: [usage({ model: 'm', priceId: 'gone', inputTokens: 1 })], prices: P, tax: NO_TAX, plan: 'postpaid' });
    expect(build).toThrow(InvoiceDataError);
    expect(build).toThrow(/no price gone for usage of m/);
  });

  it('refuses bad token counts, prices, periods and currencies', () => {
    const build = (u: Partial<UsageAggregate>, p: Map<string, LinePrice> = P, currency = 'USD') =>
      buildInvoice({ currency, usage: [usage({ model: 'm', priceId: 'p-mini', ...u })], prices: p, tax: NO_TAX, plan: 'postpaid' });
    expect(() => build({ inputTokens: -1 })).toThrow(InvoiceDataError);
    expect(() => build({ outputTokens: 1.5 })).toThrow(InvoiceDataError);
    expect(() => build({ cacheReadTokens: Number.NaN })).toThrow(InvoiceDataError);
    expect(() => build({ usagePeriod: '2026-13' })).toThrow(InvoiceDataError);
    expect(() => build({}, prices({ 'p-mini': { inputPerMtok: '-1', cachedInputPerMtok: null, outputPerMtok: '1' } }))).toThrow(InvoiceDataError);
    expect(() => build({}, prices({ 'p-mini': { inputPerMtok: '1e-3', cachedInputPerMtok: null, outputPerMtok: '1' } }))).toThrow(InvoiceDataError);
    expect(() => build({}, P, 'XYZ')).toThrow(InvoiceDataError);
  });
});

describe('buildInvoice: totals', () => {
  it('rounds tax half-up on the subtotal, once', () => {
    const tenOhFive = buildInvoice({
      currency: 'USD',
      usage: [usage({ model: 'big', priceId: 'p-big', inputTokens: 4_020_000 })], // 10.05
      prices: P,
      tax: DE_VAT,
      plan: 'postpaid',
    });
    // 10.05 × 0.19 = 1.9095 -> 1.91
    expect(tenOhFive.totals).toEqual({ subtotal: '10.05', taxRate: '0.19', taxAmount: '1.91', total: '11.96', creditsApplied: '0.00', amountDue: '11.96' });

    const half = buildInvoice({
      currency: 'USD',
      usage: [usage({ model: 'big', priceId: 'p-big', inputTokens: 1_000_000 })], // 2.50
      prices: P,
      tax: DE_VAT,
      plan: 'postpaid',
    });
    // 2.50 × 0.19 = 0.475 exactly -> 0.48 (with floats, (2.5 * 0.19).toFixed(2) gives "0.47")
    expect(half.totals.taxAmount).toBe('0.48');
    expect(half.totals.total).toBe('2.98');
  });

  it('taxes the sum of rounded lines, not the unrounded usage', () => {
    // Three lines of 0.004 each: unrounded 0.012 -> 0.01, but each line rounds to 0.00.
    const inv = buildInvoice({
      currency: 'USD',
      usage: [
        usage({ model: 'a', priceId: 'p-big', inputTokens: 1_600 }),
        usage({ model: 'b', priceId: 'p-big', inputTokens: 1_600 }),
        usage({ model: 'c', priceId: 'p-big', inputTokens: 1_600 }),
      ],
      prices: P,
      tax: DE_VAT,
      plan: 'postpaid',
    });
    expect(inv.lines.map((l) => l.amount)).toEqual(['0.00', '0.00', '0.00']);
    expect(inv.totals).toMatchObject({ subtotal: '0.00', taxAmount: '0.00', total: '0.00' });
  });

  it('carries the tax note and rate of the treatment', () => {
    const rc: TaxTreatment = { kind: 'reverse_charge', rate: '0', country: 'FR', note: 'Reverse charge: ... Customer VAT ID: FR1' };
    const inv = buildInvoice({ currency: 'EUR', usage: [usage({ model: 'big', priceId: 'p-big', outputTokens: 1_000_000 })], prices: P, tax: rc, plan: 'postpaid' });
    expect(inv.taxNote).toBe('Reverse charge: ... Customer VAT ID: FR1');
    expect(inv.totals).toMatchObject({ subtotal: '10.00', taxRate: '0', taxAmount: '0.00', total: '10.00' });
    expect(inv.currency).toBe('EUR');
  });

  it('formats with the currency minor digits (JPY has none)', () => {
    const inv = buildInvoice({ currency: 'JPY', usage: [usage({ model: 'big', priceId: 'p-big', inputTokens: 1_000_000 })], prices: P, tax: DE_VAT, plan: 'postpaid' });
    // 2.5 -> 3 (half-up to whole yen); tax 3 × 0.19 = 0.57 -> 1
    expect(inv.lines[0]!.amount).toBe('3');
    expect(inv.totals).toMatchObject({ subtotal: '3', taxAmount: '1', total: '4', amountDue: '4', creditsApplied: '0' });
  });

  const tenDollars = [usage({ model: 'big', priceId: 'p-big', outputTokens: 1_000_000 })]; // 10.00, + 1.90 VAT = 11.90

  it('prepaid with credit left: everything paid by credits, nothing due', () => {
    const inv = buildInvoice({ currency: 'USD', usage: tenDollars, prices: P, tax: DE_VAT, plan: 'prepaid', closingBalance: '42.123456789012' });
    expect(inv.totals).toEqual({ subtotal: '10.00', taxRate: '0.19', taxAmount: '1.90', total: '11.90', creditsApplied: '11.90', amountDue: '0.00' });
    const exactlyZero = buildInvoice({ currency: 'USD', usage: tenDollars, prices: P, tax: DE_VAT, plan: 'prepaid', closingBalance: '0' });
    expect(exactlyZero.totals).toMatchObject({ creditsApplied: '11.90', amountDue: '0.00' });
  });

  it('prepaid in overdraft: the overdraft (rounded half-up) is due, never more than the total', () => {
    const od = buildInvoice({ currency: 'USD', usage: tenDollars, prices: P, tax: DE_VAT, plan: 'prepaid', closingBalance: '-3.205' });
    expect(od.totals).toMatchObject({ total: '11.90', amountDue: '3.21', creditsApplied: '8.69' });
    const tiny = buildInvoice({ currency: 'USD', usage: tenDollars, prices: P, tax: DE_VAT, plan: 'prepaid', closingBalance: '-0.004999' });
    expect(tiny.totals).toMatchObject({ amountDue: '0.00', creditsApplied: '11.90' });
    const deep = buildInvoice({ currency: 'USD', usage: tenDollars, prices: P, tax: DE_VAT, plan: 'prepaid', closingBalance: '-500.00' });
    expect(deep.totals).toMatchObject({ total: '11.90', amountDue: '11.90', creditsApplied: '0.00' });
  });

  it('prepaid needs the closing balance', () => {
    expect(() => buildInvoice({ currency: 'USD', usage: tenDollars, prices: P, tax: DE_VAT, plan: 'prepaid' })).toThrow(InvoiceDataError);
    expect(() => buildInvoice({ currency: 'USD', usage: tenDollars, prices: P, tax: DE_VAT, plan: 'prepaid', closingBalance: '1e3' })).toThrow(InvoiceDataError);
  });

  it('postpaid: nothing from credits, the total is due (a closing balance is ignored)', () => {
    const inv = buildInvoice({ currency: 'USD', usage: tenDollars, prices: P, tax: DE_VAT, plan: 'postpaid', closingBalance: '100' });
    expect(inv.totals).toMatchObject({ total: '11.90', creditsApplied: '0.00', amountDue: '11.90' });
  });

  it('keeps its invariants across random usage, prices, tax rates and balances', () => {
    const price = fc.record({
      inputPerMtok: fc.stringMatching(/^(0|[1-9]\d{0,2})(\.\d{1,12})?$/),
      cachedInputPerMtok: fc.option(fc.stringMatching(/^(0|[1-9]\d{0,1})(\.\d{1,12})?$/), { nil: null }),
      outputPerMtok: fc.stringMatching(/^(0|[1-9]\d{0,2})(\.\d{1,12})?$/),
    });
    const tokens = fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 5_000 }), fc.integer({ min: 0, max: 2_000_000_000 }));
    const agg = fc.record({
      model: fc.constantFrom('a', 'b', 'gpt-x'),
      priceId: fc.constantFrom('p0', 'p1', 'p2'),
      inputTokens: tokens,
      cacheReadTokens: tokens,
      cacheWriteTokens: tokens,
      outputTokens: tokens,
      late: fc.boolean(),
      usagePeriod: fc.constantFrom('2026-09', '2026-10'),
    });
    fc.assert(
      fc.property(
        fc.array(agg, { maxLength: 12 }),
        fc.tuple(price, price, price),
        fc.constantFrom('0', '0.19', '0.2', '0.055', '0.17', '0.255'),
        fc.constantFrom<'prepaid' | 'postpaid'>('prepaid', 'postpaid'),
        fc.stringMatching(/^-?(0|[1-9]\d{0,3})(\.\d{1,12})?$/),
        (usageList, [p0, p1, p2], rate, plan, closingBalance) => {
          const ps = prices({ p0, p1, p2 });
          const tax: TaxTreatment = rate === '0' ? NO_TAX : { kind: 'domestic', rate, country: 'DE', note: null };
          const inv = buildInvoice({ currency: 'USD', usage: usageList, prices: ps, tax, plan, closingBalance });
          const D = (s: string) => new Decimal(s);
          const sum = (xs: string[]) => xs.reduce((a, x) => a.plus(x), new Decimal(0));
          const money = /^\d+\.\d{2}$/;

          // Every line: rounded half-up from quantity × price, fixed to cents; no zero quantities.
          for (const l of inv.lines) {
            expect(l.quantity).toBeGreaterThan(0);
            expect(l.amount).toMatch(money);
            const exact = D(String(l.quantity)).mul(l.unitPricePerMtok).div(1_000_000);
            expect(D(l.amount).eq(exact.toDecimalPlaces(2, Decimal.ROUND_HALF_UP))).toBe(true);
            expect(D(l.amount).minus(exact).abs().lte('0.005')).toBe(true);
          }
          // Every token is on exactly one line.
          const tokensOf = (kind: string) => inv.lines.filter((l) => l.kind === kind).reduce((a, l) => a + l.quantity, 0);
          expect(tokensOf('input')).toBe(usageList.reduce((a, u) => a + u.inputTokens + u.cacheWriteTokens, 0));
          expect(tokensOf('cached_input')).toBe(usageList.reduce((a, u) => a + u.cacheReadTokens, 0));
          expect(tokensOf('output')).toBe(usageList.reduce((a, u) => a + u.outputTokens, 0));
          // Totals.
          const t = inv.totals;
          for (const v of [t.subtotal, t.taxAmount, t.total, t.creditsApplied, t.amountDue]) expect(v).toMatch(money);
          expect(D(t.subtotal).eq(sum(inv.lines.map((l) => l.amount)))).toBe(true);
          expect(D(t.taxAmount).eq(D(t.subtotal).mul(rate).toDecimalPlaces(2, Decimal.ROUND_HALF_UP))).toBe(true);
          expect(D(t.total).eq(sum(inv.lines.map((l) => l.amount)).plus(t.taxAmount))).toBe(true);
          expect(D(t.creditsApplied).plus(t.amountDue).eq(t.total)).toBe(true);
          expect(D(t.amountDue).gte(0) && D(t.amountDue).lte(t.total)).toBe(true);
          if (plan === 'postpaid') expect(t.amountDue).toBe(t.total);
          else if (!D(closingBalance).isNegative()) expect(t.amountDue).toBe('0.00');
          // Order: positions 1..n, model then regular before late.
          expect(inv.lines.map((l) => l.position)).toEqual(inv.lines.map((_, i) => i + 1));
          const keys = inv.lines.map((l) => `${l.model}\u0000${l.late ? 1 : 0}`);
          expect(keys).toEqual([...keys].sort());
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('billingPeriod', () => {
  it('gives the UTC month as [start, end)', () => {
    expect(billingPeriod('2026-10')).toEqual({ start: '2026-10-01T00:00:00.000Z', end: '2026-11-01T00:00:00.000Z' });
    expect(billingPeriod('2028-02')).toEqual({ start: '2028-02-01T00:00:00.000Z', end: '2028-03-01T00:00:00.000Z' });
  });

  it('rolls December over into January of the next year', () => {
    expect(billingPeriod('2026-12')).toEqual({ start: '2026-12-01T00:00:00.000Z', end: '2027-01-01T00:00:00.000Z' });
  });

  it('refuses malformed periods', () => {
    for (const bad of ['2026-13', '2026-00', '2026-1', '26-10', '2026/10', '2026-10-01', ' 2026-10', '', 'abcd-ef', '0000-01']) {
      expect(() => billingPeriod(bad), bad).toThrow(InvoiceDataError);
    }
    expect(() => billingPeriod(202610 as unknown as string)).toThrow(InvoiceDataError);
  });

  it('knows the last day of a period, leap years included', () => {
    expect(periodLastDay('2026-02')).toBe('2026-02-28');
    expect(periodLastDay('2028-02')).toBe('2028-02-29');
    expect(periodLastDay('2100-02')).toBe('2100-02-28');
    expect(periodLastDay('2000-02')).toBe('2000-02-29');
    expect(periodLastDay('2026-12')).toBe('2026-12-31');
    expect(periodLastDay('2026-11')).toBe('2026-11-30');
  });
});

describe('dueDate', () => {
  it('adds the payment terms in calendar days to the UTC issue date', () => {
    expect(dueDate('2026-11-03', 14)).toBe('2026-11-17');
    expect(dueDate('2026-12-20', 30)).toBe('2027-01-19');
    expect(dueDate('2028-02-15', 14)).toBe('2028-02-29');
    expect(dueDate('2026-11-03', 0)).toBe('2026-11-03');
    expect(dueDate('2026-11-03T10:15:00.000Z', 14)).toBe('2026-11-17');
    expect(dueDate('2026-11-03T23:30:00-05:00', 14)).toBe('2026-11-18'); // 04:30 UTC on the 4th
  });

  it('refuses bad dates and terms', () => {
    expect(() => dueDate('2026-02-30', 14)).toThrow(InvoiceDataError);
    expect(() => dueDate('03/11/2026', 14)).toThrow(InvoiceDataError);
    expect(() => dueDate('2026-11-03', -1)).toThrow(InvoiceDataError);
    expect(() => dueDate('2026-11-03', 1.5)).toThrow(InvoiceDataError);
  });
});
