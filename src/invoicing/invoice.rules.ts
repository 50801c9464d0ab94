/**
 * Builds an invoice's lines and totals from a period's usage. Pure: no I/O, no clock
 * (dates are passed in), no Node built-ins, so workflows may import it.
 *
 * Invoice rules:
 * - One line per (model, price version, token kind, late flag + usage period). Usage
 *   aggregates with the same key are added together first.
 * - Lines are ordered by model, then regular before late (late lines by usage period),
 *   then price version (by the price's effectiveFrom when given, then its id), then
 *   kind: input, cached_input, output.
 * - quantity = tokens. Cache writes are priced by lifetime: five-minute writes are the
 *   cache_write line at cacheWritePerMtok, one-hour writes the cache_write_1h line at
 *   cacheWrite1hPerMtok; a write whose price is unset counts as input tokens at the input
 *   price (as every price version before those prices did). Cache reads are the
 *   cached_input line, at cachedInputPerMtok, or at inputPerMtok when the price has no
 *   cached price; output tokens (reasoning included) at outputPerMtok. Every token is
 *   priced exactly once.
 * - unitPricePerMtok is kept at full precision (the stored price, normalised with
 *   toAmountString).
 * - amount = roundToMinorUnit(quantity × unitPrice / 1,000,000, currency). Rounding
 *   (half-up, to the currency's minor unit) happens ONLY here, per line, and for tax.
 * - subtotal = the sum of the rounded line amounts; taxAmount =
 *   roundToMinorUnit(subtotal × tax rate); total = subtotal + taxAmount. Invariant
 *   (asserted): total equals the sum of the rounded lines plus the tax.
 * - Lines with zero quantity are omitted.
 * - Late lines (usage of an earlier period that arrived after that period's invoice)
 *   are described as "Late usage from 2026-10: gpt-x input tokens".
 * - Prepaid: usage was paid with credits, so amountDue = min(total, max(0,
 *   -closingBalance rounded half-up to the minor unit)), which is 0 unless the account
 *   ended the period in overdraft, and creditsApplied = total - amountDue.
 *   Postpaid: creditsApplied = 0, amountDue = total.
 * - Money values are fixed strings with the currency's minor digits ("12.50"); the tax
 *   rate is the treatment's rate as given.
 * - Bad input (a priceId without a price, a negative or fractional token count, a
 *   malformed period or price, an unsupported currency, a prepaid invoice without its
 *   closing balance) is an InvoiceDataError: an invoice is never built on a guess.
 */
import type Decimal from 'decimal.js';
import { isDecimalString, minorUnits, Money, parseAmount, roundToMinorUnit, toAmountString } from '../shared/money.rules';
import type { TaxTreatment } from './tax.rules';

export type LineKind = 'input' | 'cached_input' | 'cache_write' | 'cache_write_1h' | 'output';

export interface UsageAggregate {
  model: string;
  /** The price version the usage was priced at. */
  priceId: string;
  /** Uncached input tokens. */
  inputTokens: number;
  cacheReadTokens: number;
  /** Every cache write, whatever its lifetime. */
  cacheWriteTokens: number;
  /** The one-hour part of cacheWriteTokens (absent: none). */
  cacheWrite1hTokens?: number;
  /** All output tokens, reasoning included. */
  outputTokens: number;
  /** Usage of an earlier period that was not on that period's invoice. */
  late: boolean;
  /** The period the usage occurred in, 'YYYY-MM' (for late lines, the earlier period). */
  usagePeriod: string;
}

/** USD (the account's currency) per million tokens, decimal strings. */
export interface LinePrice {
  inputPerMtok: string;
  cachedInputPerMtok: string | null;
  outputPerMtok: string;
  /** Five-minute and one-hour cache writes; unset or null: written tokens are input tokens at the input price. */
  cacheWritePerMtok?: string | null;
  cacheWrite1hPerMtok?: string | null;
  /** Optional: when the price version took effect (ISO). Only used to order two versions of one model. */
  effectiveFrom?: string | null;
}

export interface InvoiceLine {
  /** 1-based, in display order. */
  position: number;
  description: string;
  model: string;
  kind: LineKind;
  /** Tokens. */
  quantity: number;
  /** Price per million tokens at full precision. */
  unitPricePerMtok: string;
  /** Rounded to the currency's minor unit, fixed digits ("0.19"). */
  amount: string;
  late: boolean;
  usagePeriod: string;
  /** The price version of the line (set by buildInvoice; optional for lines read back from storage). */
  priceId?: string;
}

export interface InvoiceTotals {
  subtotal: string;
  taxRate: string;
  taxAmount: string;
  total: string;
  creditsApplied: string;
  amountDue: string;
}

export interface BuiltInvoice {
  currency: string;
  lines: InvoiceLine[];
  totals: InvoiceTotals;
  taxNote: string | null;
}

/** Bad invoice input, e.g. a usage aggregate whose priceId has no price. */
export class InvoiceDataError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvoiceDataError';
  }
}

export interface BuildInvoiceInput {
  currency: string;
  usage: readonly UsageAggregate[];
  prices: ReadonlyMap<string, LinePrice>;
  tax: TaxTreatment;
  plan: 'prepaid' | 'postpaid';
  /** Prepaid only: the account's ledger balance at the end of the period (decimal string); negative means overdraft. */
  closingBalance?: string;
}

const TOKENS_PER_PRICE_UNIT = 1_000_000;
const KIND_ORDER: readonly LineKind[] = ['input', 'cached_input', 'cache_write', 'cache_write_1h', 'output'];
const KIND_LABEL: Record<LineKind, string> = {
  input: 'input tokens',
  cached_input: 'cached input tokens',
  cache_write: 'cache write tokens (5 minutes)',
  cache_write_1h: 'cache write tokens (1 hour)',
  output: 'output tokens',
};
const PERIOD = /^(\d{4})-(0[1-9]|1[0-2])$/;

function fail(message: string): never {
  throw new InvoiceDataError(message);
}

function checkPeriod(period: unknown, what: string): { year: number; month: number } {
  const m = typeof period === 'string' ? PERIOD.exec(period) : null;
  if (!m) fail(`${what} must be a period 'YYYY-MM', got ${JSON.stringify(period)}`);
  const year = Number(m[1]);
  if (year < 1) fail(`${what} must be a period 'YYYY-MM' with a year from 0001, got ${JSON.stringify(period)}`);
  return { year, month: Number(m[2]) };
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

/** A period 'YYYY-MM' as UTC ISO instants [start, end): '2026-12' -> 2026-12-01T00:00:00.000Z .. 2027-01-01T00:00:00.000Z. */
export function billingPeriod(period: string): { start: string; end: string } {
  const { year, month } = checkPeriod(period, 'billing period');
  const nextYear = month === 12 ? year + 1 : year;
  const nextMonth = month === 12 ? 1 : month + 1;
  if (nextYear > 9999) fail(`billing period ${period} ends after year 9999`);
  return {
    start: `${pad(year, 4)}-${pad(month, 2)}-01T00:00:00.000Z`,
    end: `${pad(nextYear, 4)}-${pad(nextMonth, 2)}-01T00:00:00.000Z`,
  };
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

/**
 * The last calendar day of a period ('2026-02' -> '2026-02-28'): the date a period's
 * supply is taxed at (pass it as `at` to taxTreatment). billingPeriod's `end` is
 * exclusive, the first instant of the next period, so it would pick up a rate that
 * starts on the 1st of the next month.
 */
export function periodLastDay(period: string): string {
  const { year, month } = checkPeriod(period, 'billing period');
  return `${pad(year, 4)}-${pad(month, 2)}-${pad(daysInMonth(year, month), 2)}`;
}

const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;

/**
 * The due date (YYYY-MM-DD) `termsDays` calendar days after the UTC date of `issuedAt`
 * (an ISO date or instant): dueDate('2026-11-03T10:00:00Z', 14) = '2026-11-17'.
 */
export function dueDate(issuedAt: string, termsDays: number): string {
  if (!Number.isSafeInteger(termsDays) || termsDays < 0 || termsDays > 3660) {
    fail(`payment terms must be a whole number of days from 0 to 3660, got ${String(termsDays)}`);
  }
  let ms: number = Number.NaN;
  const d = typeof issuedAt === 'string' ? ISO_DATE.exec(issuedAt) : null;
  if (d) {
    const [y, m, day] = [Number(d[1]), Number(d[2]), Number(d[3])];
    if (y >= 1000 && m >= 1 && m <= 12 && day >= 1 && day <= daysInMonth(y, m)) ms = Date.UTC(y, m - 1, day);
  } else if (typeof issuedAt === 'string' && ISO_INSTANT.test(issuedAt)) {
    const [y, m, day] = issuedAt.slice(0, 10).split('-').map(Number) as [number, number, number];
    if (y >= 1000 && m >= 1 && m <= 12 && day >= 1 && day <= daysInMonth(y, m)) ms = Date.parse(issuedAt);
  }
  if (!Number.isFinite(ms)) fail(`issue date must be an ISO date or instant, got ${JSON.stringify(issuedAt)}`);
  const due = new Date(ms);
  due.setUTCDate(due.getUTCDate() + termsDays);
  return due.toISOString().slice(0, 10);
}

function tokenCount(n: unknown, field: string, agg: UsageAggregate): number {
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) {
    fail(`usage ${field} of ${agg.model} (price ${agg.priceId}) must be a non-negative integer, got ${String(n)}`);
  }
  return n + 0; // -0 -> 0
}

function priceValue(value: unknown, field: string, priceId: string): Decimal {
  if (typeof value !== 'string' || !isDecimalString(value)) {
    fail(`price ${priceId} ${field} must be a decimal string, got ${JSON.stringify(value)}`);
  }
  const d = parseAmount(value);
  if (d.isNegative()) fail(`price ${priceId} ${field} must not be negative`);
  return d;
}

function fixed(amount: Decimal, currency: string): string {
  const s = new Money(amount).toFixed(minorUnits(currency));
  return /^-0(\.0+)?$/.test(s) ? s.slice(1) : s; // never "-0.00"
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

interface Group {
  model: string;
  priceId: string;
  late: boolean;
  usagePeriod: string;
  input: number;
  cacheRead: number;
  cacheWrite: number;
  cacheWrite1h: number;
  output: number;
}

function addTokens(a: number, b: number, what: string, g: Group): number {
  const sum = a + b;
  if (!Number.isSafeInteger(sum)) fail(`${what} of ${g.model} (price ${g.priceId}) exceed the largest safe integer`);
  return sum;
}

export function buildInvoice(input: BuildInvoiceInput): BuiltInvoice {
  const { usage, prices, tax, plan } = input;
  let currency: string;
  try {
    minorUnits(input.currency);
    currency = input.currency.toUpperCase();
  } catch {
    fail(`unsupported currency ${JSON.stringify(input.currency)}`);
  }
  if (plan !== 'prepaid' && plan !== 'postpaid') fail(`unknown plan ${JSON.stringify(plan)}`);

  // 1. Add up aggregates per (model, price version, late flag, usage period).
  const groups = new Map<string, Group>();
  for (const agg of usage) {
    if (typeof agg.model !== 'string' || agg.model === '') fail('usage aggregate without a model');
    if (typeof agg.priceId !== 'string' || agg.priceId === '') fail(`usage of ${agg.model} without a price id`);
    if (typeof agg.late !== 'boolean') fail(`usage of ${agg.model}: late must be a boolean`);
    checkPeriod(agg.usagePeriod, `usagePeriod of ${agg.model}`);
    if (!prices.has(agg.priceId)) fail(`no price ${agg.priceId} for usage of ${agg.model}`);
    const uncached = tokenCount(agg.inputTokens, 'inputTokens', agg);
    const cacheRead = tokenCount(agg.cacheReadTokens, 'cacheReadTokens', agg);
    const cacheWrite = tokenCount(agg.cacheWriteTokens, 'cacheWriteTokens', agg);
    const cacheWrite1h = Math.min(tokenCount(agg.cacheWrite1hTokens ?? 0, 'cacheWrite1hTokens', agg), cacheWrite);
    const output = tokenCount(agg.outputTokens, 'outputTokens', agg);

    const key = JSON.stringify([agg.model, agg.priceId, agg.late, agg.usagePeriod]);
    let g = groups.get(key);
    if (!g) {
      g = { model: agg.model, priceId: agg.priceId, late: agg.late, usagePeriod: agg.usagePeriod, input: 0, cacheRead: 0, cacheWrite: 0, cacheWrite1h: 0, output: 0 };
      groups.set(key, g);
    }
    // Cache writes are kept by lifetime here; those whose price is unset join the input line below.
    g.input = addTokens(g.input, uncached, 'input tokens', g);
    g.cacheWrite = addTokens(g.cacheWrite, cacheWrite - cacheWrite1h, 'cache-write tokens', g);
    g.cacheWrite1h = addTokens(g.cacheWrite1h, cacheWrite1h, 'one-hour cache-write tokens', g);
    g.cacheRead = addTokens(g.cacheRead, cacheRead, 'cache-read tokens', g);
    g.output = addTokens(g.output, output, 'output tokens', g);
  }

  // 2. Order: model, regular before late (late by usage period), price version, then kind.
  const effective = (priceId: string): string => prices.get(priceId)?.effectiveFrom ?? '';
  const ordered = [...groups.values()].sort(
    (a, b) =>
      compare(a.model, b.model) ||
      Number(a.late) - Number(b.late) ||
      compare(a.usagePeriod, b.usagePeriod) ||
      compare(effective(a.priceId), effective(b.priceId)) ||
      compare(a.priceId, b.priceId),
  );

  // 3. One rounded line per kind with tokens.
  const lines: InvoiceLine[] = [];
  let subtotal: Decimal = new Money(0);
  for (const g of ordered) {
    const price = prices.get(g.priceId)!;
    const inputPrice = priceValue(price.inputPerMtok, 'inputPerMtok', g.priceId);
    const cachedPrice =
      price.cachedInputPerMtok === null || price.cachedInputPerMtok === undefined
        ? inputPrice
        : priceValue(price.cachedInputPerMtok, 'cachedInputPerMtok', g.priceId);
    const outputPrice = priceValue(price.outputPerMtok, 'outputPerMtok', g.priceId);
    const has = (v: unknown) => v !== null && v !== undefined;
    const write5m = has(price.cacheWritePerMtok) ? g.cacheWrite : 0;
    const write1h = has(price.cacheWrite1hPerMtok) ? g.cacheWrite1h : 0;
    const parts: Record<LineKind, { quantity: number; unit: Decimal }> = {
      input: { quantity: addTokens(g.input, addTokens(g.cacheWrite - write5m, g.cacheWrite1h - write1h, 'input tokens', g), 'input tokens', g), unit: inputPrice },
      cached_input: { quantity: g.cacheRead, unit: cachedPrice },
      cache_write: { quantity: write5m, unit: write5m ? priceValue(price.cacheWritePerMtok, 'cacheWritePerMtok', g.priceId) : inputPrice },
      cache_write_1h: { quantity: write1h, unit: write1h ? priceValue(price.cacheWrite1hPerMtok, 'cacheWrite1hPerMtok', g.priceId) : inputPrice },
      output: { quantity: g.output, unit: outputPrice },
    };
    for (const kind of KIND_ORDER) {
      const { quantity, unit } = parts[kind];
      if (quantity === 0) continue;
      const amount = roundToMinorUnit(new Money(quantity).mul(unit).div(TOKENS_PER_PRICE_UNIT), currency);
      subtotal = subtotal.plus(amount);
      const what = `${g.model} ${KIND_LABEL[kind]}`;
      lines.push({
        position: lines.length + 1,
        description: g.late ? `Late usage from ${g.usagePeriod}: ${what}` : what,
        model: g.model,
        kind,
        quantity,
        unitPricePerMtok: unit.isZero() ? '0' : toAmountString(unit),
        amount: fixed(amount, currency),
        late: g.late,
        usagePeriod: g.usagePeriod,
        priceId: g.priceId,
      });
    }
  }

  // 4. Tax on the subtotal, rounded once.
  if (typeof tax.rate !== 'string' || !isDecimalString(tax.rate)) fail(`tax rate must be a decimal string, got ${JSON.stringify(tax.rate)}`);
  const rate = parseAmount(tax.rate);
  if (rate.isNegative() || rate.gte(1)) fail(`tax rate must be a fraction in [0, 1), got ${tax.rate}`);
  const taxAmount = roundToMinorUnit(subtotal.mul(rate), currency);
  const total = subtotal.plus(taxAmount);

  // Invariant: the total is the sum of the rounded lines as printed, plus the tax as printed.
  const printed = lines.reduce((sum, l) => sum.plus(l.amount), new Money(0)).plus(fixed(taxAmount, currency));
  if (!printed.eq(total) || !roundToMinorUnit(total, currency).eq(total)) {
    throw new Error(`invoice invariant broken: total ${total.toFixed()} != lines + tax ${printed.toFixed()}`);
  }

  // 5. What is still owed.
  let amountDue: Decimal;
  if (plan === 'prepaid') {
    const closing = input.closingBalance;
    if (closing === undefined || closing === null) fail('a prepaid invoice needs the closing balance of the period');
    if (typeof closing !== 'string' || !isDecimalString(closing)) {
      fail(`closing balance must be a decimal string, got ${JSON.stringify(closing)}`);
    }
    const overdraft = roundToMinorUnit(parseAmount(closing).neg(), currency);
    amountDue = Money.min(total, Money.max(0, overdraft));
  } else {
    amountDue = total;
  }
  const creditsApplied = total.minus(amountDue);

  return {
    currency,
    lines,
    totals: {
      subtotal: fixed(subtotal, currency),
      taxRate: tax.rate,
      taxAmount: fixed(taxAmount, currency),
      total: fixed(total, currency),
      creditsApplied: fixed(creditsApplied, currency),
      amountDue: fixed(amountDue, currency),
    },
    taxNote: tax.note,
  };
}
