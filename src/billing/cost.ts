/**
 * Cost of one request from its normalised usage. Pure: no I/O.
 *
 * Cost rules:
 * - Prices are USD per million tokens, as decimal strings; cost = tokens × price / 1,000,000,
 *   computed per kind of token with decimal arithmetic (never a JS number).
 * - Uncached input tokens are priced at inputPerMtok.
 * - Cache reads are priced at cachedInputPerMtok when the price sets one, else at inputPerMtok.
 * - Cache writes are priced at inputPerMtok (there is no separate cache-write price yet).
 * - Output tokens, reasoning included, are priced at outputPerMtok; reasoning tokens are
 *   a part of the output count and are not priced again.
 * - Costs are NOT rounded to cents here: rounding to the currency's minor unit happens
 *   only in money.ts's roundToMinorUnit, when something is charged or invoiced.
 * - Each part and the total are kept at up to 12 decimal places (PRICE_SCALE, the
 *   NUMERIC(24,12) storage precision), rounded half-up at the 12th place and only there;
 *   the total is the sum of the stored parts, so a breakdown always adds up to it.
 */
import type Decimal from 'decimal.js';
import { Money, parseAmount, PRICE_SCALE, toAmountString } from './money';
import type { NormalizedUsage } from './usage';

export interface TokenPrice {
  inputPerMtok: string;
  cachedInputPerMtok: string | null;
  outputPerMtok: string;
} // USD per million tokens, decimal strings

export interface CostBreakdown {
  input: Decimal;
  cacheRead: Decimal;
  cacheWrite: Decimal;
  output: Decimal;
  total: Decimal;
}

const TOKENS_PER_PRICE_UNIT = 1_000_000;

function unitPrice(value: string, field: string): Decimal {
  const price = parseAmount(value);
  // A negative price would turn usage into a credit: a configuration error, not a discount.
  if (price.isNegative()) throw new Error(`price ${field} must not be negative`);
  return price;
}

function tokens(n: number, field: string): Decimal {
  // NormalizedUsage is produced by normalizeUsage, but a hand-built one must not smuggle NaN in.
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`usage ${field} must be a non-negative integer`);
  return new Money(n);
}

/** Rounds half-up at the storage scale; a value of another Decimal clone is taken into Money first. */
function atStorageScale(d: Decimal): Decimal {
  return (d.constructor === Money ? d : new Money(d)).toDecimalPlaces(PRICE_SCALE, Money.ROUND_HALF_UP);
}

const ZERO = new Money(0);

function part(n: number, field: string, perMtok: Decimal): Decimal {
  const count = tokens(n, field);
  return n === 0 || perMtok.isZero() ? ZERO : atStorageScale(count.mul(perMtok).div(TOKENS_PER_PRICE_UNIT));
}

interface ParsedPrice {
  input: Decimal;
  cached: Decimal;
  output: Decimal;
}

/**
 * Parsed prices by their three strings. The gateway prices every request twice
 * (reservation and outcome) against a handful of price versions; parsing and
 * checking the strings each time was a measurable share of its CPU. Keyed by
 * value, not by object, so a caller that mutates or rebuilds a price cannot get
 * a stale one; bounded so that a stream of distinct prices cannot grow it.
 */
const parsedPrices = new Map<string, ParsedPrice>();
const PARSED_PRICES_MAX = 1_000;

function parsePrice(price: TokenPrice): ParsedPrice {
  const key = `${price.inputPerMtok}|${price.cachedInputPerMtok === null ? 'N' : `V${price.cachedInputPerMtok}`}|${price.outputPerMtok}`;
  let parsed = parsedPrices.get(key);
  if (!parsed) {
    const input = unitPrice(price.inputPerMtok, 'inputPerMtok');
    parsed = {
      input,
      cached: price.cachedInputPerMtok === null ? input : unitPrice(price.cachedInputPerMtok, 'cachedInputPerMtok'),
      output: unitPrice(price.outputPerMtok, 'outputPerMtok'),
    };
    if (parsedPrices.size >= PARSED_PRICES_MAX) parsedPrices.clear();
    parsedPrices.set(key, parsed);
  }
  return parsed;
}

export function computeCost(usage: NormalizedUsage, price: TokenPrice): CostBreakdown {
  const { input, cached, output } = parsePrice(price);

  const breakdown = {
    input: part(usage.inputTokens, 'inputTokens', input),
    cacheRead: part(usage.cacheReadTokens, 'cacheReadTokens', cached),
    cacheWrite: part(usage.cacheWriteTokens, 'cacheWriteTokens', input),
    output: part(usage.outputTokens, 'outputTokens', output),
  };
  // Zero parts (most requests have no cache tokens) are skipped: each plus allocates.
  let total: Decimal = ZERO;
  for (const p of [breakdown.input, breakdown.cacheRead, breakdown.cacheWrite, breakdown.output]) if (!p.isZero()) total = total === ZERO ? p : total.plus(p);
  return { ...breakdown, total };
}

/** Canonical string for storage and transport: at most 12 decimal places, no exponent, no trailing zeros. */
export function costString(d: Decimal): string {
  const scaled = atStorageScale(d);
  return scaled.isZero() ? '0' : toAmountString(scaled); // never "-0"
}
