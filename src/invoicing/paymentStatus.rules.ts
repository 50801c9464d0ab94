import type Decimal from 'decimal.js';
import { csvCell } from '../shared/csv.rules';
import { Money, roundToMinorUnit, toAmountString } from '../shared/money.rules';

/**
 * The payment status of an invoice and the receivables aging buckets, pure
 * (docs/collections.md). Nothing here is stored: the status is computed from
 * the invoice, the credit notes against it, the sum of its payment
 * applications and its write-off, on the day given (`today`, YYYY-MM-DD, UTC).
 *
 * Only postpaid invoices are collected: a prepaid invoice was paid with
 * credits (its amount due, if any, is an overdraft the ledger already holds),
 * so it has no payment status (null), and neither has a credit note.
 */
export type PaymentStatus = 'open' | 'partially_paid' | 'paid' | 'overdue' | 'uncollectible' | 'void';

export interface PaymentStatusInput {
  kind: 'invoice' | 'credit_note' | string;
  plan: string;
  status: 'draft' | 'finalized' | 'void' | string;
  currency: string;
  /** The invoice's amount due (decimal string). */
  amountDue: string;
  /** YYYY-MM-DD, or null. */
  dueDate: string | null;
  /** What finalized credit notes against it took off, as a positive amount (their amount_due is negative). */
  credited: string;
  /** The sum of its payment applications. */
  paid: string;
  writtenOff: boolean;
}

export interface PaymentState {
  status: PaymentStatus;
  amountPaid: string;
  /** What is still to be collected (0 when paid, void or written off). */
  outstanding: string;
  /** Days past the due date on `today` (0 when not yet due or not collectable). */
  daysOverdue: number;
}

const DAY_MS = 86_400_000;
const DATE = /^\d{4}-\d{2}-\d{2}$/;

/** Whole days from `from` to `to` (YYYY-MM-DD), negative when `to` is earlier. */
export function daysBetween(from: string, to: string): number {
  if (!DATE.test(from) || !DATE.test(to)) throw new Error(`not a date: ${from} / ${to}`);
  return Math.round((Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / DAY_MS);
}

/** What is left to collect: amount due − credited − paid, never below zero, at the currency's minor unit. */
export function amountOutstanding(amountDue: string, credited: string, paid: string, currency: string): Decimal {
  const left = new Money(amountDue).minus(new Money(credited)).minus(new Money(paid));
  return roundToMinorUnit(Money.max(0, left), currency);
}

/**
 * The payment status, in this order: void (voided by a credit note) → paid
 * (nothing left, credit notes and payments counted) → uncollectible (written
 * off) → overdue (after the due date) → partially_paid (something paid) → open.
 * Null for what is not collected: credit notes, drafts, prepaid invoices.
 */
export function paymentState(inv: PaymentStatusInput, today: string): PaymentState | null {
  if (inv.kind !== 'invoice' || inv.plan !== 'postpaid' || inv.status === 'draft') return null;
  const amountPaid = toAmountString(new Money(inv.paid));
  const none = (status: PaymentStatus): PaymentState => ({ status, amountPaid, outstanding: '0', daysOverdue: 0 });
  if (inv.status === 'void') return none('void');
  const outstanding = amountOutstanding(inv.amountDue, inv.credited, inv.paid, inv.currency);
  if (outstanding.isZero()) return none('paid');
  if (inv.writtenOff) return none('uncollectible');
  const daysOverdue = inv.dueDate ? Math.max(0, daysBetween(inv.dueDate, today)) : 0;
  const status: PaymentStatus = daysOverdue > 0 ? 'overdue' : new Money(inv.paid).gt(0) ? 'partially_paid' : 'open';
  return { status, amountPaid, outstanding: toAmountString(outstanding), daysOverdue };
}

/**
 * How a transfer of `received` splits against what is still outstanding: the
 * part applied to the invoice (at most the outstanding amount) and the rest,
 * credited to the account.
 */
export function splitPayment(received: string, outstanding: string): { applied: string; excess: string } {
  const r = new Money(received);
  const applied = Money.min(r, Money.max(0, new Money(outstanding)));
  return { applied: toAmountString(applied), excess: toAmountString(r.minus(applied)) };
}

export const AGING_BUCKETS = ['current', 'days1to30', 'days31to60', 'days61to90', 'over90'] as const;
export type AgingBucket = (typeof AGING_BUCKETS)[number];

/** The aging bucket of an amount `daysOverdue` days past its due date (0 or less: current). */
export function agingBucket(daysOverdue: number): AgingBucket {
  if (daysOverdue <= 0) return 'current';
  if (daysOverdue <= 30) return 'days1to30';
  if (daysOverdue <= 60) return 'days31to60';
  if (daysOverdue <= 90) return 'days61to90';
  return 'over90';
}

export type AgingAmounts = Record<AgingBucket | 'total', string>;

export interface AgingInvoice {
  invoiceId: string;
  accountId: string;
  accountName: string;
  number: string | null;
  currency: string;
  amountDue: string;
  dueDate: string | null;
  credited: string;
  paid: string;
}

export interface AgingReport {
  asOf: string;
  /** One row per currency (all invoices are in USD today). */
  totals: ({ currency: string; invoices: number } & AgingAmounts)[];
  accounts: ({ accountId: string; accountName: string; currency: string; invoices: number } & AgingAmounts)[];
}

const zeroAmounts = () => Object.fromEntries([...AGING_BUCKETS, 'total'].map((b) => [b, new Money(0)])) as Record<AgingBucket | 'total', Decimal>;
const asStrings = (a: Record<AgingBucket | 'total', Decimal>, currency: string) =>
  Object.fromEntries(Object.entries(a).map(([k, v]) => [k, v.toFixed(currency === 'JPY' ? 0 : 2)])) as AgingAmounts;

/**
 * The receivables aging report on `asOf`: each collectable invoice's
 * outstanding amount (not written off, not void) in the bucket of its days
 * overdue, summed per account and currency and in total. Invoices with
 * nothing outstanding are left out. Accounts sorted by total outstanding,
 * largest first.
 */
export function agingReport(invoices: readonly AgingInvoice[], asOf: string): AgingReport {
  const perAccount = new Map<string, { accountId: string; accountName: string; currency: string; invoices: number; amounts: Record<AgingBucket | 'total', Decimal> }>();
  const perCurrency = new Map<string, { invoices: number; amounts: Record<AgingBucket | 'total', Decimal> }>();
  for (const inv of invoices) {
    const outstanding = amountOutstanding(inv.amountDue, inv.credited, inv.paid, inv.currency);
    if (outstanding.isZero()) continue;
    const bucket = agingBucket(inv.dueDate ? daysBetween(inv.dueDate, asOf) : 0);
    const key = `${inv.accountId}:${inv.currency}`;
    const acc = perAccount.get(key) ?? { accountId: inv.accountId, accountName: inv.accountName, currency: inv.currency, invoices: 0, amounts: zeroAmounts() };
    const cur = perCurrency.get(inv.currency) ?? { invoices: 0, amounts: zeroAmounts() };
    for (const into of [acc, cur]) {
      into.invoices += 1;
      into.amounts[bucket] = into.amounts[bucket].plus(outstanding);
      into.amounts.total = into.amounts.total.plus(outstanding);
    }
    perAccount.set(key, acc);
    perCurrency.set(inv.currency, cur);
  }
  return {
    asOf,
    totals: [...perCurrency.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([currency, c]) => ({ currency, invoices: c.invoices, ...asStrings(c.amounts, currency) })),
    accounts: [...perAccount.values()]
      .sort((a, b) => b.amounts.total.cmp(a.amounts.total) || a.accountId.localeCompare(b.accountId))
      .map((a) => ({ accountId: a.accountId, accountName: a.accountName, currency: a.currency, invoices: a.invoices, ...asStrings(a.amounts, a.currency) })),
  };
}

/** The report as CSV: one row per account, then one TOTAL row per currency. */
export function agingCsv(report: AgingReport): string {
  const header = ['account_id', 'account_name', 'currency', 'invoices', ...AGING_BUCKETS, 'total'];
  const rows = [
    ...report.accounts.map((a) => [a.accountId, a.accountName, a.currency, a.invoices, ...AGING_BUCKETS.map((b) => a[b]), a.total]),
    ...report.totals.map((t) => ['TOTAL', '', t.currency, t.invoices, ...AGING_BUCKETS.map((b) => t[b]), t.total]),
  ];
  // Quoted when needed; a leading formula character is neutralised for spreadsheets (csvCell).
  return [header, ...rows].map((r) => r.map(csvCell).join(',')).join('\n') + '\n';
}

/**
 * The usage credit a postpaid account gets back as its invoice is paid.
 * Settlement lowered the account's balance by its usage (net of tax), and
 * the credit limit is measured from that balance: without giving it back,
 * an account that pays every invoice would still run into its limit. Each
 * payment gives back the usage part of what it applied to the invoice
 * (applied × subtotal / amount due), counted cumulatively and rounded once,
 * so that an invoice paid in full has given back exactly its subtotal
 * however many payments it took. A credit note that takes part of the
 * invoice off gives nothing back: that part was not paid.
 */
export function usageCreditRestored(inv: { amountDue: string; subtotal: string; currency: string }, paidBefore: string, paidAfter: string): Decimal {
  const due = new Money(inv.amountDue);
  const subtotal = new Money(inv.subtotal);
  if (due.lte(0) || subtotal.lte(0)) return new Money(0);
  const share = (paid: string) => {
    const p = new Money(paid);
    if (p.gte(due)) return subtotal;
    return roundToMinorUnit(Money.max(0, p).times(subtotal).div(due), inv.currency);
  };
  return Money.max(0, share(paidAfter).minus(share(paidBefore)));
}
