import { describe, expect, it } from 'vitest';
import { closedHoldAmount, holdGrant, holdWanted, needsReservation, sliceCovers, sliceRetireAt } from '../../src/ledger/balanceGate.rules';
import { spendable } from '../../src/ledger/ledger.rules';
import { Money } from '../../src/shared/money.rules';

const m = (v: string) => new Money(v);

describe('spendable', () => {
  it('is balance less open holds plus the overdraft allowance (prepaid) or the credit limit (postpaid)', () => {
    const base = { balance: m('10'), held: m('3'), creditLimit: m('100'), overdraftAllowance: m('0.5') };
    expect(spendable({ ...base, plan: 'prepaid' }).toFixed()).toBe('7.5');
    expect(spendable({ ...base, plan: 'postpaid' }).toFixed()).toBe('107');
  });
});

describe('balance gate rules', () => {
  it('reserves nothing for a request that can cost nothing', () => {
    expect(needsReservation(m('0'))).toBe(false);
    expect(needsReservation(m('0.000001'))).toBe(true);
  });

  it('lets a request start on a slice whose unspent part covers its bound, exactly', () => {
    expect(sliceCovers({ amount: m('1'), spent: m('0.4') }, m('0.6'))).toBe(true);
    expect(sliceCovers({ amount: m('1'), spent: m('0.4') }, m('0.600000000001'))).toBe(false);
  });

  it('asks for a whole slice, and the database grants up to what is spendable, nothing below the bound', () => {
    expect(holdWanted(m('0.5'), m('2')).toFixed()).toBe('2');
    expect(holdWanted(m('3'), m('2')).toFixed()).toBe('3');
    expect(holdGrant(m('1.5'), m('0.5'), m('2'))?.toFixed()).toBe('1.5');
    expect(holdGrant(m('5'), m('0.5'), m('2'))?.toFixed()).toBe('2');
    expect(holdGrant(m('0.4'), m('0.5'), m('2'))).toBeUndefined();
  });

  it('retires a slice two thirds into its hold, and a closed hold keeps what was spent, at least what is settled', () => {
    expect(sliceRetireAt(1_000, 60_000)).toBe(41_000);
    expect(closedHoldAmount({ amount: m('2'), settled: m('0.5') }, m('1.2')).toFixed()).toBe('1.2');
    expect(closedHoldAmount({ amount: m('2'), settled: m('0.5') }, m('0.1')).toFixed()).toBe('0.5');
    expect(closedHoldAmount({ amount: m('2'), settled: m('0.5') }, m('3')).toFixed()).toBe('2');
  });
});
