/**
 * Cost of one request from its normalised usage. Pure: no I/O.
 *
 * Cost rules:
 * - Prices are USD per million tokens, as decimal strings; cost = tokens × price / 1,000,000,
 *   computed per kind of token with decimal arithmetic (never a JS number).
 * - Uncached input tokens are priced at inputPerMtok.
 * - Cache reads are priced at cachedInputPerMtok when the price sets one, else at inputPerMtok.
 * - Cache writes are priced by lifetime: five-minute writes (and writes of unreported lifetime)
 *   at cacheWritePerMtok, one-hour writes (cacheWrite1hTokens, a part of cacheWriteTokens) at
 *   cacheWrite1hPerMtok; either price unset means inputPerMtok (what versions before those
 *   prices existed charged).
 * - Output tokens, reasoning included, are priced at outputPerMtok; reasoning tokens are
 *   a part of the output count and are not priced again.
 * - Costs are NOT rounded to cents here: rounding to the currency's minor unit happens
 *   only in money.ts's roundToMinorUnit, when something is charged or invoiced.
 * - Each part and the total are kept at up to 12 decimal places (PRICE_SCALE, the
 *   NUMERIC(24,12) storage precision), rounded half-up at the 12th place and only there;
 *   the total is the sum of the stored parts, so a breakdown always adds up to it.
 */
import type Decimal from 'decimal.js';
import { Money, parseAmount, PRICE_SCALE, toAmountString } from '../shared/money.rules';
import type { NormalizedUsage } from './usage.rules';

export interface TokenPrice {
  inputPerMtok: string;
  cachedInputPerMtok: string | null;
  outputPerMtok: string;
  cacheWritePerMtok?: string | null;
  cacheWrite1hPerMtok?: string | null;
} // USD per million tokens, decimal strings

export interface CostBreakdown {
  input: Decimal;
  cacheRead: Decimal;
  /** Five-minute (and unlabelled) cache writes. */
  cacheWrite: Decimal;
  cacheWrite1h: Decimal;
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

function checkTokens(n: number, field: string): void {
  // NormalizedUsage is produced by normalizeUsage, but a hand-built one must not smuggle NaN in.
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`usage ${field} must be a non-negative integer`);
}

/** Rounds half-up at the storage scale; a value of another Decimal clone is taken into Money first. */
function atStorageScale(d: Decimal): Decimal {
  if (d.constructor === Money && d.decimalPlaces() <= PRICE_SCALE) return d;
  return (d.constructor === Money ? d : new Money(d)).toDecimalPlaces(PRICE_SCALE, Money.ROUND_HALF_UP);
}

const ZERO = new Money(0);

/**
 * tokens × price per token, rounded at the storage scale. The price per token
 * (per-million price ÷ 1,000,000) is exact in Money's 40 digits, and so is
 * its product with any token count, so this equals tokens × price ÷ 1,000,000.
 */
function part(n: number, field: string, perToken: Decimal): Decimal {
  checkTokens(n, field);
  return n === 0 || perToken.isZero() ? ZERO : atStorageScale(perToken.mul(n));
}

/** Prices per single token. */
interface ParsedPrice {
  input: Decimal;
  cached: Decimal;
  write5m: Decimal;
  write1h: Decimal;
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

function priceKey(price: TokenPrice): string {
  const opt = (v: string | null | undefined) => (v === null || v === undefined ? 'N' : `V${v}`);
  return `${price.inputPerMtok}|${opt(price.cachedInputPerMtok)}|${price.outputPerMtok}|${opt(price.cacheWritePerMtok)}|${opt(price.cacheWrite1hPerMtok)}`;
}

function parsePrice(price: TokenPrice): ParsedPrice {
  const key = priceKey(price);
  let parsed = parsedPrices.get(key);
  if (!parsed) {
    const input = unitPrice(price.inputPerMtok, 'inputPerMtok').div(TOKENS_PER_PRICE_UNIT);
    const orInput = (v: string | null | undefined, field: string) => (v === null || v === undefined ? input : unitPrice(v, field).div(TOKENS_PER_PRICE_UNIT));
    parsed = {
      input,
      cached: orInput(price.cachedInputPerMtok, 'cachedInputPerMtok'),
      write5m: orInput(price.cacheWritePerMtok, 'cacheWritePerMtok'),
      write1h: orInput(price.cacheWrite1hPerMtok, 'cacheWrite1hPerMtok'),
      output: unitPrice(price.outputPerMtok, 'outputPerMtok').div(TOKENS_PER_PRICE_UNIT),
    };
    if (parsedPrices.size >= PARSED_PRICES_MAX) parsedPrices.clear();
    parsedPrices.set(key, parsed);
  }
  return parsed;
}

export function computeCost(usage: NormalizedUsage, price: TokenPrice): CostBreakdown {
  const { input, cached, write5m, write1h, output } = parsePrice(price);
  const oneHour = usage.cacheWrite1hTokens ?? 0;
  checkTokens(oneHour, 'cacheWrite1hTokens');
  checkTokens(usage.cacheWriteTokens, 'cacheWriteTokens');
  // The one-hour writes are a part of cacheWriteTokens: each write is priced once, by its lifetime.
  const hour = Math.min(oneHour, usage.cacheWriteTokens);

  const breakdown = {
    input: part(usage.inputTokens, 'inputTokens', input),
    cacheRead: part(usage.cacheReadTokens, 'cacheReadTokens', cached),
    cacheWrite: part(usage.cacheWriteTokens - hour, 'cacheWriteTokens', write5m),
    cacheWrite1h: part(hour, 'cacheWrite1hTokens', write1h),
    output: part(usage.outputTokens, 'outputTokens', output),
  };
  // Zero parts (most requests have no cache tokens) are skipped: each plus allocates.
  let total: Decimal = ZERO;
  for (const p of [breakdown.input, breakdown.cacheRead, breakdown.cacheWrite, breakdown.cacheWrite1h, breakdown.output]) if (!p.isZero()) total = total === ZERO ? p : total.plus(p);
  return { ...breakdown, total };
}

/** Canonical string for storage and transport: at most 12 decimal places, no exponent, no trailing zeros. */
export function costString(d: Decimal): string {
  const scaled = atStorageScale(d);
  if (scaled.isZero()) return '0'; // never "-0"
  return scaled.constructor === Money ? scaled.toFixed() : toAmountString(scaled);
}

/** Input counts are rounded up to a multiple of this for reservation bounds. */
const BOUND_STEP = 1_024;
const bounds = new Map<string, Decimal>();
const BOUNDS_MAX = 10_000;

/**
 * An upper bound of a request's cost, for reserving balance before it is
 * forwarded: at most `inputTokensAtMost` input tokens, rounded up to the next
 * multiple of 1,024, and `outputTokens` output tokens. Every input token is
 * priced at the highest of the input-side prices (uncached input, cache read,
 * five-minute and one-hour cache write, each when set), since any of them may
 * be written to the cache, and every output token at the output price.
 * Rounding up keeps it a bound and lets the gateway
 * reuse it: requests of one price and similar size share one computation
 * instead of pricing every request twice. The reservation is replaced by the
 * actual cost when the request ends, so the rounding holds back a little more
 * balance for the request's duration and never changes what is charged.
 */
export function reservationBound(price: TokenPrice, inputTokensAtMost: number, outputTokens: number): Decimal {
  const input = Math.ceil(Math.max(0, inputTokensAtMost) / BOUND_STEP) * BOUND_STEP;
  const key = `${priceKey(price)}|${input}|${outputTokens}`;
  let bound = bounds.get(key);
  if (bound === undefined) {
    const p = parsePrice(price);
    // A cache write can cost 1.25x (five minutes) or 2x (one hour) the input price.
    let perInput = p.input;
    for (const v of [p.cached, p.write5m, p.write1h]) if (v.gt(perInput)) perInput = v;
    const inputPart = part(input, 'inputTokensAtMost', perInput);
    const outputPart = part(outputTokens, 'outputTokens', p.output);
    bound = inputPart.isZero() ? outputPart : outputPart.isZero() ? inputPart : inputPart.plus(outputPart);
    if (bounds.size >= BOUNDS_MAX) bounds.clear();
    bounds.set(key, bound);
  }
  return bound;
}
