import Decimal from 'decimal.js';

/**
 * Money rules (see docs/ledger.md, "Money"):
 * - Amounts are Decimal in code, NUMERIC in PostgreSQL, and decimal strings
 *   across process and Temporal boundaries. Never a JS number.
 * - Unit prices (per million tokens) and computed costs keep full precision
 *   (up to PRICE_SCALE decimal places) until something is charged.
 * - Rounding to a currency's minor unit happens only in `roundToMinorUnit`,
 *   half-up (ROUND_HALF_UP: 0.005 -> 0.01), the convention of fiat billing.
 */

/** A private Decimal constructor so global Decimal settings elsewhere cannot change ours. */
export const Money = Decimal.clone({ precision: 40, rounding: Decimal.ROUND_HALF_UP });
export type Money = Decimal;

/** Decimal places stored for prices and unrounded costs (NUMERIC(24,12) in SQL). */
export const PRICE_SCALE = 12;

const MINOR_UNITS: Record<string, number> = { USD: 2, EUR: 2, GBP: 2, CHF: 2, JPY: 0 };

export function minorUnits(currency: string): number {
  const digits = MINOR_UNITS[currency.toUpperCase()];
  if (digits === undefined) throw new Error(`unsupported currency ${currency}`);
  return digits;
}

const DECIMAL_STRING = /^-?\d+(\.\d+)?$/;

/** Parses a decimal string ("12.50"). Rejects numbers, exponents, NaN and empty input. */
export function parseAmount(value: string): Decimal {
  if (typeof value !== 'string' || !DECIMAL_STRING.test(value.trim())) {
    throw new Error(`not a decimal amount: ${JSON.stringify(value)}`);
  }
  return new Money(value.trim());
}

export function isDecimalString(value: string): boolean {
  return DECIMAL_STRING.test(value.trim());
}

/** Digits after the point in a decimal string ("2.50" -> 2). */
export function decimalPlaces(value: string): number {
  const dot = value.trim().indexOf('.');
  return dot < 0 ? 0 : value.trim().length - dot - 1;
}

/**
 * The largest amount (USD) a staff member may enter at once: a top-up, refund,
 * adjustment, credit limit or price. Far below NUMERIC(24,12)'s 10^12 so that
 * balances summed from many such entries cannot overflow the column.
 */
export const MAX_STAFF_AMOUNT = '1000000000';

export function withinStaffAmountBound(value: string): boolean {
  return new Money(value.trim()).abs().lte(MAX_STAFF_AMOUNT);
}

/** The single rounding rule for charged amounts: half-up to the currency's minor unit. */
export function roundToMinorUnit(amount: Decimal, currency: string): Decimal {
  return new Money(amount).toDecimalPlaces(minorUnits(currency), Decimal.ROUND_HALF_UP);
}

/** Canonical string form for storage and transport: no exponent, trailing zeros trimmed. */
export function toAmountString(amount: Decimal): string {
  return new Money(amount).toFixed();
}

/** Formats for people: rounded to the minor unit, fixed digits ("12.50 USD"). */
export function formatMoney(amount: Decimal, currency: string): string {
  return `${roundToMinorUnit(amount, currency).toFixed(minorUnits(currency))} ${currency.toUpperCase()}`;
}
