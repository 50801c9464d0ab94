import type Decimal from 'decimal.js';
import { Money } from '../shared/money.rules';

/**
 * The balance gate's decision: whether a request may start. Before a request
 * is forwarded its reservation bound (its maximum cost) is taken from a slice
 * of the account's spendable balance (spendable in ledger.rules.ts) that the
 * gateway instance holds; a slice is obtained from the database as a hold.
 * src/gateway/balanceGate.ts runs these rules on the hot path; acquireHold in
 * src/ledger/holds.data.ts applies holdGrant in SQL, under the balance lock.
 */

/** A request that can cost nothing needs no reservation. */
export function needsReservation(maxCost: Decimal): boolean {
  return maxCost.gt(0);
}

/** What a gateway instance holds for an account: `amount` reserved, of which `spent` is spent or reserved by requests in flight. */
export interface SliceBalance {
  amount: Decimal;
  spent: Decimal;
}

/** Whether the slice's unspent part covers a request's reservation bound: the request may start on it. */
export function sliceCovers(slice: SliceBalance, maxCost: Decimal): boolean {
  return !slice.amount.minus(slice.spent).lt(maxCost);
}

/** How much a gateway asks to hold: a whole slice, or the request's bound when that is more. */
export function holdWanted(need: Decimal, slice: Decimal): Decimal {
  return Money.max(need, slice);
}

/**
 * What the database grants against the account's spendable balance: nothing
 * when it cannot cover the request's bound (`need`), else what was wanted, up
 * to what is spendable.
 */
export function holdGrant(spendable: Decimal, need: Decimal, wanted: Decimal): Decimal | undefined {
  if (spendable.lt(need)) return undefined;
  return Money.min(wanted, spendable);
}

/** When a slice stops being spent from: two thirds into its hold's lifetime, so an expiring hold is never spent from. */
export function sliceRetireAt(now: number, ttlMs: number): number {
  return now + Math.floor((ttlMs * 2) / 3);
}

/**
 * What a hold keeps when the gateway closes it: what was spent from it, never
 * more than it reserved and never less than is already settled. The rest goes
 * back to the account's spendable balance.
 */
export function closedHoldAmount(hold: { amount: Decimal; settled: Decimal }, spent: Decimal): Decimal {
  return Money.max(hold.settled, Money.min(hold.amount, spent));
}
