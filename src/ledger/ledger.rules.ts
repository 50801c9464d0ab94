import type Decimal from 'decimal.js';
import { Money } from '../shared/money.rules';

/**
 * Ledger rules, pure. Each entry moves an amount between a customer account
 * and a contra account; the sign is from the customer's side (positive
 * credits the customer). Balances are kept at 12 decimal places (usage costs
 * are sub-cent); people see them rounded half-up to cents.
 */
export type EntryKind = 'topup' | 'grant' | 'usage' | 'refund' | 'adjustment' | 'reversal';
export type Contra = 'cash' | 'revenue' | 'promotions' | 'adjustments';

export const CONTRA: Record<Exclude<EntryKind, 'reversal'>, Contra> = {
  topup: 'cash', // money received
  grant: 'promotions', // free credit
  usage: 'revenue', // what the customer used
  refund: 'cash', // money paid back
  adjustment: 'adjustments', // staff correction, either sign
};

export class LedgerRuleError extends Error {}

/** The signed amount an entry of `kind` posts for a positive `magnitude` (adjustments take the sign given). */
export function signedAmount(kind: Exclude<EntryKind, 'reversal'>, amount: Decimal): Decimal {
  const a = new Money(amount);
  switch (kind) {
    case 'topup':
    case 'grant':
      if (!a.gt(0)) throw new LedgerRuleError(`a ${kind} must be positive`);
      return a;
    case 'refund':
      if (!a.gt(0)) throw new LedgerRuleError('a refund must be positive (it is debited)');
      return a.neg();
    case 'usage':
      if (a.lt(0)) throw new LedgerRuleError('usage cannot be negative');
      return a.neg();
    case 'adjustment':
      if (a.isZero()) throw new LedgerRuleError('an adjustment cannot be zero');
      return a;
  }
}

export interface SpendableInput {
  plan: 'prepaid' | 'postpaid';
  balance: Decimal;
  held: Decimal;
  creditLimit: Decimal;
  /** How far below zero a prepaid account may go (config PREPAID_OVERDRAFT_ALLOWANCE). */
  overdraftAllowance: Decimal;
}

/** How far below zero the account may go: the overdraft allowance for prepaid accounts, the credit limit for postpaid ones. */
export function spendingFloor(i: Pick<SpendableInput, 'plan' | 'creditLimit' | 'overdraftAllowance'>): Decimal {
  return i.plan === 'prepaid' ? i.overdraftAllowance : i.creditLimit;
}

/**
 * THE spendable-balance rule: what an account may still spend is its balance
 * plus its floor (spendingFloor), less its open holds, which are already
 * spoken for. Where SQL must compute it under a lock (the gateway's hold
 * acquisition), SPENDABLE_SQL in ledger.data.ts is this rule, written once.
 */
export function spendable(i: SpendableInput): Decimal {
  return new Money(i.balance).minus(i.held).plus(spendingFloor(i));
}

/**
 * Staff debits (refunds, negative adjustments) may not take an account below
 * its floor; usage is never refused here: it already happened, and the gate
 * is what keeps it within bounds.
 */
export function debitAllowed(kind: EntryKind, amount: Decimal, s: SpendableInput): boolean {
  if (kind === 'usage' || amount.gte(0)) return true;
  return spendable(s).plus(amount).gte(0);
}
