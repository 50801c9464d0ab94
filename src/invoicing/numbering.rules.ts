/**
 * Invoice and credit-note numbering: the one place the rule is written down.
 *
 * - Series: invoices are numbered in `<INVOICE_SERIES_PREFIX>-<year>` (config
 *   `invoicing.seriesPrefix`, default "MR": "MR-2026"), credit notes in `CN-<year>`.
 *   The year is the UTC year of the issue date, so each kind's numbering starts again
 *   at 1 every year (a new year is a new series).
 * - Number: `<series>-<n>` with n zero-padded to six digits ("MR-2026-000042"); past
 *   999999 it simply has more digits.
 * - n: 1 for a series' first number, then the last one plus 1, with no gaps and no
 *   duplicates (tax law). The counter is one row per series (`invoice_sequences`,
 *   `next_number`), taken by `nextNumberInSeries` (invoicing.data.ts) inside the
 *   finalizing transaction: the row stays locked until that transaction ends, so
 *   finalizations of one series take turns, and a rollback gives the number back.
 *   The service takes it last, so the row is held as briefly as possible.
 *
 * Reconciliation's gap check (invoice_number_gap) rebuilds numbers with the same format.
 */

/** The series an invoice issued at `issuedAt` is numbered in: "MR-2026". */
export function invoiceSeries(prefix: string, issuedAt: Date): string {
  return `${prefix}-${issuedAt.getUTCFullYear()}`;
}

/** The series a credit note issued at `issuedAt` is numbered in: "CN-2026". */
export function creditNoteSeries(issuedAt: Date): string {
  return `CN-${issuedAt.getUTCFullYear()}`;
}

/** The number printed on the document: n of the series, six digits at least ("MR-2026-000042"). */
export function documentNumber(series: string, n: number | string): string {
  return `${series}-${String(n).padStart(6, '0')}`;
}
