import { csvLine } from '../shared/csv.rules';
import { minorUnits, Money } from '../shared/money.rules';
import { daysBetween, paymentState } from './paymentStatus.rules';

/**
 * The accountants' export (docs/collections.md, "Export for the accountants"),
 * pure: which days a request covers, and one CSV line per invoice, credit
 * note, payment application and write-off of those days. The data layer
 * (accountingExport.data.ts) reads the rows page by page; nothing here does I/O.
 */

/** At most this many days in one export (a leap year). */
export const MAX_EXPORT_DAYS = 366;

const DATE = /^\d{4}-\d{2}-\d{2}$/;
const PERIOD = /^(\d{4})-(0[1-9]|1[0-2])$/;

/** YYYY-MM-DD that is a real calendar date. */
export function isCalendarDate(v: string): boolean {
  if (!DATE.test(v)) return false;
  const t = Date.parse(`${v}T00:00:00Z`);
  return !Number.isNaN(t) && new Date(t).toISOString().slice(0, 10) === v;
}

export interface ExportRange {
  /** First and last day (YYYY-MM-DD, UTC), both included. */
  from: string;
  to: string;
}

/** The days of a billing period 'YYYY-MM' (UTC), or null when it is not one. */
export function periodRange(period: string): ExportRange | null {
  const m = PERIOD.exec(period);
  if (!m) return null;
  const last = new Date(Date.UTC(Number(m[1]), Number(m[2]), 0)).getUTCDate();
  return { from: `${period}-01`, to: `${period}-${String(last).padStart(2, '0')}` };
}

/** What is wrong with a range of days, or null when it can be exported. */
export function rangeProblem(r: ExportRange): string | null {
  if (!isCalendarDate(r.from) || !isCalendarDate(r.to)) return 'from and to must be dates YYYY-MM-DD';
  const days = daysBetween(r.from, r.to) + 1;
  if (days < 1) return 'from must not be after to';
  if (days > MAX_EXPORT_DAYS) return `the range covers ${days} days; export at most ${MAX_EXPORT_DAYS} days at once`;
  return null;
}

/** The file name: accounting-2026-11.csv for a whole month, accounting-2026-11-01_2026-11-15.csv otherwise. */
export function exportFilename(r: ExportRange): string {
  const month = r.from.slice(0, 7);
  const whole = periodRange(month);
  return whole && whole.from === r.from && whole.to === r.to ? `accounting-${month}.csv` : `accounting-${r.from}_${r.to}.csv`;
}

export const RECORD_TYPES = ['invoice', 'credit_note', 'payment_application', 'write_off'] as const;
export type RecordType = (typeof RECORD_TYPES)[number];

/**
 * The columns, in order. One file, one line per record; a column that does
 * not apply to a record type is empty. Amounts are decimal strings rounded to
 * the currency's minor unit (half-up), dates YYYY-MM-DD (UTC).
 */
export const EXPORT_COLUMNS = [
  'record_type', // invoice | credit_note | payment_application | write_off
  'record_id', // the invoice's, credit note's or application's id; a write-off's invoice id
  'number', // the document number of an invoice or credit note
  'date', // issue date (invoice, credit note), the day the money arrived (application), the day of the write-off
  'account_id',
  'account_name', // as on the invoice
  'currency',
  'plan', // prepaid | postpaid (invoices and credit notes)
  'net', // subtotal before tax
  'tax',
  'total', // net + tax
  'amount_due', // total - prepaid credits applied (negative on a credit note)
  'due_date',
  'invoice_id', // the invoice the record belongs to (an invoice: itself)
  'invoice_number',
  'amount', // applied to the invoice (application), written off (write-off)
  'received', // what the payment carried in total (application)
  'credited_to_account', // received - amount: the overpayment credited to the account (application)
  'source', // bank_transfer | stripe (application)
  'reference', // the bank's reference or the payment id (application)
  'status_at_period_end', // payment status of a postpaid invoice on the export's last day (today, if that is earlier)
  'paid_at_period_end', // its applications paid on or before that day
  'outstanding_at_period_end', // what was left to collect then
  'recorded_by', // who recorded an application or a write-off
  'memo', // a credit note's reason, a write-off's reason
] as const;
export type ExportColumn = (typeof EXPORT_COLUMNS)[number];
export type ExportRecord = Partial<Record<ExportColumn, string | null>> & { record_type: RecordType };

/** The header line. */
export const exportHeader = (): string => csvLine(EXPORT_COLUMNS);

/** One record as a CSV line (cells made safe for spreadsheets by csvCell). */
export function exportLine(r: ExportRecord): string {
  return csvLine(EXPORT_COLUMNS.map((c) => r[c] ?? ''));
}

/** An amount to the currency's minor unit ('119.00'), half-up; '' for none. */
export function amountCell(v: string | null | undefined, currency: string): string {
  if (v === null || v === undefined || v === '') return '';
  return new Money(v).toFixed(minorUnits(currency), Money.ROUND_HALF_UP);
}

/** An invoice or credit note as the data layer reads it, with what was paid, credited and written off by the last day. */
export interface DocumentFacts {
  id: string;
  kind: 'invoice' | 'credit_note';
  number: string;
  issuedOn: string;
  accountId: string;
  accountName: string;
  currency: string;
  plan: string;
  subtotal: string;
  taxAmount: string;
  total: string;
  amountDue: string;
  dueDate: string | null;
  /** A credit note: the invoice it credits (id and number). */
  invoiceId: string | null;
  invoiceNumber: string | null;
  /** A credit note: why it was issued (the invoice's void reason). */
  reason: string | null;
  /** An invoice: whether a credit note issued on or before the last day voided it. */
  voidedByEnd: boolean;
  /** An invoice: finalized credit notes issued by the last day (a positive amount), applications paid by then, a write-off made by then. */
  creditedByEnd: string;
  paidByEnd: string;
  writtenOffByEnd: boolean;
}

/** An invoice's or credit note's line. The payment status is the one on `periodEnd` (the export's last day, or today if that is earlier). */
export function documentRecord(d: DocumentFacts, periodEnd: string): ExportRecord {
  const money = (v: string | null) => amountCell(v, d.currency);
  const base: ExportRecord = {
    record_type: d.kind,
    record_id: d.id,
    number: d.number,
    date: d.issuedOn,
    account_id: d.accountId,
    account_name: d.accountName,
    currency: d.currency,
    plan: d.plan,
    net: money(d.subtotal),
    tax: money(d.taxAmount),
    total: money(d.total),
    amount_due: money(d.amountDue),
    due_date: d.dueDate,
  };
  if (d.kind === 'credit_note') return { ...base, invoice_id: d.invoiceId, invoice_number: d.invoiceNumber, memo: d.reason };
  const state = paymentState(
    {
      kind: 'invoice',
      plan: d.plan,
      status: d.voidedByEnd ? 'void' : 'finalized',
      currency: d.currency,
      amountDue: d.amountDue,
      dueDate: d.dueDate,
      credited: d.creditedByEnd,
      paid: d.paidByEnd,
      writtenOff: d.writtenOffByEnd,
    },
    periodEnd,
  );
  return {
    ...base,
    invoice_id: d.id,
    invoice_number: d.number,
    status_at_period_end: state?.status ?? null,
    paid_at_period_end: state ? money(state.amountPaid) : null,
    outstanding_at_period_end: state ? money(state.outstanding) : null,
  };
}

export interface ApplicationFacts {
  id: string;
  invoiceId: string;
  invoiceNumber: string;
  accountId: string;
  accountName: string;
  currency: string;
  amount: string;
  receivedAmount: string;
  source: string;
  reference: string;
  paidOn: string;
  recordedBy: string;
}

export function applicationRecord(a: ApplicationFacts): ExportRecord {
  const money = (v: string) => amountCell(v, a.currency);
  return {
    record_type: 'payment_application',
    record_id: a.id,
    date: a.paidOn,
    account_id: a.accountId,
    account_name: a.accountName,
    currency: a.currency,
    invoice_id: a.invoiceId,
    invoice_number: a.invoiceNumber,
    amount: money(a.amount),
    received: money(a.receivedAmount),
    credited_to_account: money(new Money(a.receivedAmount).minus(a.amount).toFixed()),
    source: a.source,
    reference: a.reference,
    recorded_by: a.recordedBy,
  };
}

export interface WriteOffFacts {
  invoiceId: string;
  invoiceNumber: string;
  accountId: string;
  accountName: string;
  currency: string;
  amount: string;
  writtenOffOn: string;
  writtenOffBy: string;
  reason: string;
}

export function writeOffRecord(w: WriteOffFacts): ExportRecord {
  return {
    record_type: 'write_off',
    record_id: w.invoiceId,
    date: w.writtenOffOn,
    account_id: w.accountId,
    account_name: w.accountName,
    currency: w.currency,
    invoice_id: w.invoiceId,
    invoice_number: w.invoiceNumber,
    amount: amountCell(w.amount, w.currency),
    recorded_by: w.writtenOffBy,
    memo: w.reason,
  };
}

/** Running control totals of an export: records and the sum of `total` (documents) or `amount` (applications, write-offs) per type and currency. */
export type ExportSummary = Record<RecordType, { records: number; amounts: Record<string, string> }>;

export function emptySummary(): ExportSummary {
  return Object.fromEntries(RECORD_TYPES.map((t) => [t, { records: 0, amounts: {} }])) as unknown as ExportSummary;
}

/** Adds one record to the control totals (amounts already rounded to the minor unit). */
export function addToSummary(s: ExportSummary, r: ExportRecord): void {
  const into = s[r.record_type];
  into.records += 1;
  const v = r.record_type === 'invoice' || r.record_type === 'credit_note' ? r.total : r.amount;
  const cur = r.currency ?? '';
  if (!v || !cur) return;
  into.amounts[cur] = new Money(into.amounts[cur] ?? '0').plus(v).toFixed(minorUnits(cur));
}
