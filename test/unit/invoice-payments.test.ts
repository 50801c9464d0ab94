import { describe, expect, it } from 'vitest';
import { agingBucket, agingCsv, agingReport, amountOutstanding, daysBetween, paymentState, splitPayment, usageCreditRestored, type AgingInvoice, type PaymentStatusInput } from '../../src/invoicing/paymentStatus.rules';

const inv = (over: Partial<PaymentStatusInput> = {}): PaymentStatusInput => ({
  kind: 'invoice',
  plan: 'postpaid',
  status: 'finalized',
  currency: 'USD',
  amountDue: '100.00',
  dueDate: '2026-01-31',
  credited: '0',
  paid: '0',
  writtenOff: false,
  ...over,
});

describe('payment status of an invoice', () => {
  it('is open until the due date, overdue the day after', () => {
    expect(paymentState(inv(), '2026-01-15')).toEqual({ status: 'open', amountPaid: '0', outstanding: '100', daysOverdue: 0 });
    expect(paymentState(inv(), '2026-01-31')!.status).toBe('open');
    expect(paymentState(inv(), '2026-02-01')).toEqual({ status: 'overdue', amountPaid: '0', outstanding: '100', daysOverdue: 1 });
  });

  it('is partially paid, then paid when the applications cover the amount due', () => {
    expect(paymentState(inv({ paid: '40' }), '2026-01-10')).toEqual({ status: 'partially_paid', amountPaid: '40', outstanding: '60', daysOverdue: 0 });
    expect(paymentState(inv({ paid: '40' }), '2026-03-02')!.status).toBe('overdue');
    expect(paymentState(inv({ paid: '100' }), '2026-03-02')).toEqual({ status: 'paid', amountPaid: '100', outstanding: '0', daysOverdue: 0 });
  });

  it('counts credit notes against the amount due, and a void invoice is void', () => {
    expect(paymentState(inv({ credited: '30', paid: '70' }), '2026-05-01')!.status).toBe('paid');
    expect(paymentState(inv({ credited: '30' }), '2026-01-01')!.outstanding).toBe('70');
    expect(paymentState(inv({ status: 'void', credited: '100' }), '2026-05-01')).toEqual({ status: 'void', amountPaid: '0', outstanding: '0', daysOverdue: 0 });
  });

  it('is uncollectible once written off, unless nothing is left to collect', () => {
    expect(paymentState(inv({ writtenOff: true, paid: '10' }), '2026-05-01')).toEqual({ status: 'uncollectible', amountPaid: '10', outstanding: '0', daysOverdue: 0 });
    expect(paymentState(inv({ writtenOff: true, paid: '100' }), '2026-05-01')!.status).toBe('paid');
  });

  it('rounds to the minor unit: a sub-cent remainder is paid', () => {
    expect(paymentState(inv({ amountDue: '100.004', paid: '100' }), '2026-01-01')!.status).toBe('paid');
    expect(paymentState(inv({ amountDue: '100.005', paid: '100' }), '2026-01-01')!.outstanding).toBe('0.01');
    expect(paymentState(inv({ amountDue: '0' }), '2026-01-01')!.status).toBe('paid');
  });

  it('has none for credit notes, prepaid invoices and drafts', () => {
    expect(paymentState(inv({ kind: 'credit_note' }), '2026-01-01')).toBeNull();
    expect(paymentState(inv({ plan: 'prepaid' }), '2026-01-01')).toBeNull();
    expect(paymentState(inv({ status: 'draft' }), '2026-01-01')).toBeNull();
  });
});

describe('splitting a transfer', () => {
  it('applies up to what is outstanding and leaves the rest as credit', () => {
    expect(splitPayment('40', '100')).toEqual({ applied: '40', excess: '0' });
    expect(splitPayment('100', '100')).toEqual({ applied: '100', excess: '0' });
    expect(splitPayment('150.25', '100')).toEqual({ applied: '100', excess: '50.25' });
    expect(splitPayment('10', '0')).toEqual({ applied: '0', excess: '10' });
  });
  it('computes the outstanding amount with decimals, never negative', () => {
    expect(amountOutstanding('0.3', '0.1', '0.2', 'USD').toFixed()).toBe('0');
    expect(amountOutstanding('10', '0', '12', 'USD').toFixed()).toBe('0');
  });
});

describe('aging', () => {
  it('buckets by days overdue at the edges', () => {
    expect([-5, 0, 1, 30, 31, 60, 61, 90, 91, 400].map(agingBucket)).toEqual([
      'current', 'current', 'days1to30', 'days1to30', 'days31to60', 'days31to60', 'days61to90', 'days61to90', 'over90', 'over90',
    ]);
    expect(daysBetween('2026-01-31', '2026-03-01')).toBe(29);
    expect(daysBetween('2024-02-28', '2024-03-01')).toBe(2);
  });

  it('sums outstanding amounts per account and in total, leaving out what is settled', () => {
    const row = (accountId: string, dueDate: string, amountDue: string, paid = '0', credited = '0'): AgingInvoice => ({
      invoiceId: `${accountId}-${dueDate}`, accountId, accountName: `Acct ${accountId}`, number: null, currency: 'USD', amountDue, dueDate, credited, paid,
    });
    const r = agingReport(
      [
        row('a', '2026-06-10', '100', '25'), // current: 75
        row('a', '2026-05-20', '10'), // 11 days: 10
        row('a', '2026-04-01', '20'), // 60 days: 20
        row('b', '2026-03-01', '1000.10'), // 91 days: 1000.10
        row('b', '2026-04-15', '5', '5'), // paid: left out
        row('c', '2026-05-01', '7', '0', '7'), // credited: left out
      ],
      '2026-05-31',
    );
    expect(r.asOf).toBe('2026-05-31');
    expect(r.accounts).toEqual([
      { accountId: 'b', accountName: 'Acct b', currency: 'USD', invoices: 1, current: '0.00', days1to30: '0.00', days31to60: '0.00', days61to90: '0.00', over90: '1000.10', total: '1000.10' },
      { accountId: 'a', accountName: 'Acct a', currency: 'USD', invoices: 3, current: '75.00', days1to30: '10.00', days31to60: '20.00', days61to90: '0.00', over90: '0.00', total: '105.00' },
    ]);
    expect(r.totals).toEqual([{ currency: 'USD', invoices: 4, current: '75.00', days1to30: '10.00', days31to60: '20.00', days61to90: '0.00', over90: '1000.10', total: '1105.10' }]);
    const csv = agingCsv(r).trim().split('\n');
    expect(csv[0]).toBe('account_id,account_name,currency,invoices,current,days1to30,days31to60,days61to90,over90,total');
    expect(csv.at(-1)).toBe('TOTAL,,USD,4,75.00,10.00,20.00,0.00,1000.10,1105.10');
  });

  it('quotes CSV cells and defuses spreadsheet formulas in account names', () => {
    const r = agingReport([{ invoiceId: 'i', accountId: 'x', accountName: '=HYPERLINK("evil"), Inc', number: null, currency: 'USD', amountDue: '1', dueDate: '2026-01-01', credited: '0', paid: '0' }], '2026-01-01');
    expect(agingCsv(r).split('\n')[1]).toBe(`x,"'=HYPERLINK(""evil""), Inc",USD,1,1.00,0.00,0.00,0.00,0.00,1.00`);
  });
});

describe('usageCreditRestored', () => {
  const inv119 = { amountDue: '119.00', subtotal: '100.00', currency: 'USD' };
  const restored = (before: string, after: string, i = inv119) => usageCreditRestored(i, before, after).toFixed(2);

  it('gives back the usage part (net of tax) of what a payment applied', () => {
    expect(restored('0', '119.00')).toBe('100.00');
    expect(restored('0', '59.50')).toBe('50.00');
  });

  it('gives back exactly the subtotal over any number of payments, rounding cumulatively', () => {
    const inv = { amountDue: '100.00', subtotal: '84.03', currency: 'USD' };
    let paid = 0;
    let total = 0;
    for (const step of [33.33, 33.33, 33.34]) {
      total += Number(usageCreditRestored(inv, paid.toFixed(2), (paid + step).toFixed(2)));
      paid += step;
    }
    expect(total.toFixed(2)).toBe('84.03');
  });

  it('gives nothing for nothing applied, and nothing when there is no usage or nothing due', () => {
    expect(restored('50.00', '50.00')).toBe('0.00');
    expect(restored('0', '10.00', { amountDue: '0', subtotal: '0', currency: 'USD' })).toBe('0.00');
    expect(restored('0', '10.00', { amountDue: '10.00', subtotal: '0', currency: 'USD' })).toBe('0.00');
  });

  it('never gives back more than the subtotal, whatever is applied past the amount due', () => {
    expect(restored('100.00', '500.00')).toBe('15.97'); // 100.00 − round(100 × 100 / 119)
    expect(restored('0', '500.00')).toBe('100.00');
  });
});
