import { Money, toAmountString } from '../../shared/money.rules';

/** An amount from PostgreSQL (numeric as text, or null for none) as a report stores it. */
export const money = (v: string | null | undefined): string => toAmountString(new Money(v ?? '0'));
/** actual - expected, the report's `difference`. */
export const diff = (expected: string, actual: string): string => toAmountString(new Money(actual).minus(expected));
