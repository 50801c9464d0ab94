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

function atStorageScale(d: Decimal): Decimal {
  return new Money(d).toDecimalPlaces(PRICE_SCALE, Money.ROUND_HALF_UP);
}

function part(n: number, field: string, perMtok: Decimal): Decimal {
  return atStorageScale(tokens(n, field).mul(perMtok).div(TOKENS_PER_PRICE_UNIT));
}

export function computeCost(usage: NormalizedUsage, price: TokenPrice): CostBreakdown {
  const input = unitPrice(price.inputPerMtok, 'inputPerMtok');
  const cached = price.cachedInputPerMtok === null ? input : unitPrice(price.cachedInputPerMtok, 'cachedInputPerMtok');
  const output = unitPrice(price.outputPerMtok, 'outputPerMtok');

  const breakdown = {
    input: part(usage.inputTokens, 'inputTokens', input),
    cacheRead: part(usage.cacheReadTokens, 'cacheReadTokens', cached),
    cacheWrite: part(usage.cacheWriteTokens, 'cacheWriteTokens', input),
    output: part(usage.outputTokens, 'outputTokens', output),
  };
  const total = breakdown.input.plus(breakdown.cacheRead).plus(breakdown.cacheWrite).plus(breakdown.output);
  return { ...breakdown, total };
}

/** Canonical string for storage and transport: at most 12 decimal places, no exponent, no trailing zeros. */
export function costString(d: Decimal): string {
  const scaled = atStorageScale(d);
  return scaled.isZero() ? '0' : toAmountString(scaled); // never "-0"
}
