import type { InvoicePayments } from '../../invoicing/payments.service';
import { AGING_BUCKETS, agingCsv, type AgingAmounts } from '../../invoicing/paymentStatus.rules';
import { html, table, type Html } from '../html';
import { BILLING, type PageKit } from './kit';

/**
 * Receivables (docs/collections.md): the aging report of what postpaid
 * accounts owe, in total and per account, on a chosen day, and the same
 * report as CSV (the admin API's and the CLI's). Billing and admin staff.
 */

/** At most this many accounts on the page; the CSV has them all. */
const PAGE_ACCOUNTS = 500;
const BUCKET_LABELS: Record<(typeof AGING_BUCKETS)[number] | 'total', string> = {
  current: 'Current',
  days1to30: '1–30 days',
  days31to60: '31–60 days',
  days61to90: '61–90 days',
  over90: 'Over 90 days',
  total: 'Total',
};
const COLUMNS = [...AGING_BUCKETS, 'total'] as const;
const amounts = (a: AgingAmounts): Html[] => COLUMNS.map((b) => html`${a[b]}`);

/** The as-of day from the query: a bounded string, checked by the service (a bad one is an error message on the page). */
function asOfFrom(q: unknown): string | undefined {
  return typeof q === 'string' && q.trim() !== '' ? q.trim().slice(0, 32) : undefined;
}

export function receivablesPages({ get, send }: PageKit, payments: Pick<InvoicePayments, 'aging'>): void {
  get('/console/receivables.csv', BILLING, async (req, res) => {
    const asOf = asOfFrom(req.query.asOf);
    const report = await payments.aging(asOf ? { asOf } : {});
    res.type('text/csv; charset=utf-8').setHeader('content-disposition', `attachment; filename="aging-${report.asOf}.csv"`);
    res.setHeader('cache-control', 'no-store');
    res.send(agingCsv(report));
  });

  get('/console/receivables', BILLING, async (req, res, s) => {
    const asOf = asOfFrom(req.query.asOf);
    const report = await payments.aging(asOf ? { asOf } : {});
    const shown = report.accounts.slice(0, PAGE_ACCOUNTS);
    send(
      res,
      s,
      req,
      'Receivables',
      html`<form method="get" action="/console/receivables"><label for="asOf">As of (YYYY-MM-DD, UTC; empty for today)</label><input id="asOf" name="asOf" value="${report.asOf}" maxlength="10" placeholder="YYYY-MM-DD" inputmode="numeric"> <button type="submit">Show</button></form>
<p>What is outstanding on finalized postpaid invoices on <strong>${report.asOf}</strong>, by days past the due date; written-off and void invoices are left out. <a href="/console/receivables.csv?asOf=${report.asOf}" download>Download CSV</a></p>
${table(
  ['Currency', 'Invoices', ...COLUMNS.map((b) => BUCKET_LABELS[b])],
  report.totals.map((t) => [html`${t.currency}`, html`${String(t.invoices)}`, ...amounts(t)]),
  'Total receivables',
)}
${table(
  ['Account', 'Currency', 'Invoices', ...COLUMNS.map((b) => BUCKET_LABELS[b])],
  shown.map((a) => [html`<a href="/console/accounts/${a.accountId}">${a.accountName}</a>`, html`${a.currency}`, html`${String(a.invoices)}`, ...amounts(a)]),
  'Receivables per account, largest total first',
)}
${report.accounts.length > shown.length ? html`<p class="muted">The first ${PAGE_ACCOUNTS} of ${report.accounts.length} accounts; the CSV has them all.</p>` : ''}`,
      '/console/receivables',
    );
  });
}
