import { csrfField, html, table, type Html } from '../../console/html';
import { ConflictError, DependencyUnavailableError, ValidationError } from '../../errors';
import { CheckoutProviderError } from '../../ledger/checkout.service';
import { formatMoney, Money } from '../../shared/money.rules';
import { MAX_DETAIL_TEXT, type CustomerBillingService } from '../billing.service';
import { back, body, type CustomerPageKit } from './kit';

const PATH = '/app/billing';

/** What the provider's return address says, as fixed texts (the query cannot make the page say anything else). */
const CHECKOUT_NOTES: Record<string, string> = {
  success: 'Payment received by the payment provider: it is credited to your account once the provider confirms it, usually within a minute. Reload this page to see it.',
  cancelled: 'The payment was cancelled: nothing was charged.',
};

/** The form's labels, so a refusal names the field as the page does. */
const DETAIL_LABEL: Record<string, string> = { name: 'Company name', vatId: 'VAT id', billingEmail: 'Billing email', country: 'Country' };

/** A refusal of the details form, with the page's field names; nothing was saved. */
const detailsRefused = (err: ValidationError) => {
  const text = err.fieldErrors.map((e) => `${DETAIL_LABEL[e.field] ?? e.field}: ${e.message}`).join('; ') || err.message;
  return new ValidationError(`The billing details were not saved. ${text}`, err.fieldErrors);
};

const STATUS_LABEL: Record<string, string> = {
  open: 'Open',
  partially_paid: 'Partially paid',
  paid: 'Paid',
  overdue: 'Overdue',
  uncollectible: 'Uncollectible',
  void: 'Void',
};

/**
 * The Billing page (area 'billing': owners, admins and billing members): the
 * balance and a top-up by card, invoices and credit notes with their PDFs and
 * a Pay button for open postpaid invoices, the latest ledger entries, and the
 * billing details. Every action is for the session's account.
 */
export function billingPages({ get, post, send }: CustomerPageKit, billing: CustomerBillingService): void {
  get(
    PATH,
    async (req, res, s) => {
      const p = await billing.page(s);
      const money = (v: string, currency = p.currency) => formatMoney(new Money(v), currency);
      const note = typeof req.query.checkout === 'string' && Object.hasOwn(CHECKOUT_NOTES, req.query.checkout) ? CHECKOUT_NOTES[req.query.checkout] : null;
      const payForm = (id: string): Html =>
        html`<form method="post" action="${PATH}/pay">${csrfField(s.csrf)}<input type="hidden" name="invoiceId" value="${id}"><button type="submit">Pay</button></form>`;
      const topUp = billing.cardPayments
        ? html`<form method="post" action="${PATH}/top-up">${csrfField(s.csrf)}
    <div><label for="amount">Amount (${p.currency})</label>
    <input id="amount" name="amount" inputmode="decimal" required maxlength="32" autocomplete="off" placeholder="${billing.limits.minAmount}"></div>
    <p class="muted">Between ${billing.limits.minAmount} and ${billing.limits.maxAmount} ${p.currency}, at most two decimals. You pay on the payment provider's page.</p>
    <div><button type="submit">Top up</button></div></form>`
        : html`<p class="muted">Top-ups by card are not available here; contact us to add credit.</p>`;
      send(
        res,
        s,
        req,
        'Billing',
        html`${note ? html`<p role="status" id="checkout-note">${note}</p>` : html``}
<div class="grid">
  <section aria-labelledby="bal"><h2 id="bal">Balance</h2>
    <p class="figure" id="balance">${money(p.balance)}</p>
    ${topUp}</section>
  <section aria-labelledby="details"><h2 id="details">Billing details</h2>
    <dl><dt>Company name</dt><dd id="company-name">${p.account.name}</dd>
    <dt>VAT id</dt><dd id="vat-id">${p.account.vatId ?? '—'}</dd>
    <dt>Billing email</dt><dd id="billing-email">${p.account.billingEmail ?? '—'}</dd>
    <dt>Country</dt><dd id="country">${p.account.country ?? '—'}</dd></dl>
    <details><summary>Change billing details</summary>
    <form method="post" action="${PATH}/details">${csrfField(s.csrf)}
    <div><label for="d-name">Company name</label><input id="d-name" name="name" value="${p.account.name}" required maxlength="200"></div>
    <div><label for="d-vat">VAT id</label><input id="d-vat" name="vat_id" value="${p.account.vatId ?? ''}" maxlength="32"></div>
    <div><label for="d-email">Billing email</label><input id="d-email" name="billing_email" value="${p.account.billingEmail ?? ''}" type="email" maxlength="${String(MAX_DETAIL_TEXT)}"></div>
    <div><label for="d-country">Country (ISO code, such as DE)</label><input id="d-country" name="country" value="${p.account.country ?? ''}" required maxlength="2"></div>
    <p class="muted">An empty VAT id, billing email or country clears it. New invoices use the new details; issued ones keep theirs.</p>
    <div><button type="submit">Save billing details</button></div></form></details></section>
</div>
<section aria-labelledby="inv"><h2 id="inv">Invoices and credit notes</h2>
  ${table(
    ['Number', 'Period', 'Total', 'Due', 'Status', 'Paid', ''],
    p.invoices.map((i) => [
      html`${i.kind === 'credit_note' ? 'Credit note ' : ''}${i.number ?? '—'}`,
      html`${i.period}`,
      html`${money(i.total, i.currency)}`,
      html`${i.dueDate ?? '—'}`,
      html`<span class="invoice-status">${i.paymentStatus ? (STATUS_LABEL[i.paymentStatus] ?? i.paymentStatus) : i.status === 'void' ? 'Void' : 'Issued'}</span>`,
      html`${i.amountPaid !== null ? money(i.amountPaid, i.currency) : '—'}`,
      html`<a href="${PATH}/invoices/${i.id}.pdf">PDF</a>${i.payable && billing.cardPayments ? payForm(i.id) : html``}`,
    ]),
    'Invoices and credit notes',
  )}
  ${p.moreInvoices ? html`<p class="muted">The latest ${String(p.invoices.length)} are shown; ask us for older ones.</p>` : html``}
</section>
<section aria-labelledby="ledger"><h2 id="ledger">Latest top-ups and deductions</h2>
  ${table(
    ['When (UTC)', 'Kind', 'Amount', 'Balance after'],
    p.entries.map((e) => [html`${e.createdAt.slice(0, 16).replace('T', ' ')}`, html`${e.kind}`, html`${money(e.amount)}`, html`${money(e.balanceAfter)}`]),
    'Ledger entries, newest first',
  )}
  ${p.moreEntries ? html`<p class="muted">The latest ${String(p.entries.length)} entries are shown.</p>` : html``}
</section>`,
        PATH,
      );
    },
    'billing',
  );

  get(
    `${PATH}/invoices/:id.pdf`,
    async (req, res, s) => {
      const { pdf, filename } = await billing.invoicePdf(s, req.params.id);
      res.setHeader('cache-control', 'no-store');
      res.setHeader('content-disposition', `attachment; filename="${filename}"`);
      res.type('application/pdf').send(pdf);
    },
    'billing',
  );

  post(
    `${PATH}/details`,
    async (req, res, s) => {
      try {
        await billing.saveDetails(s, body(req));
      } catch (err) {
        throw err instanceof ValidationError ? detailsRefused(err) : err;
      }
      back(res, PATH, 'billing_details_saved');
    },
    'billing',
  );

  post(
    `${PATH}/top-up`,
    async (req, res, s) => {
      let url: string;
      try {
        ({ url } = await billing.topUp(s, body(req).amount));
      } catch (err) {
        if (err instanceof ValidationError) return void back(res, PATH, 'billing_amount_invalid');
        if (err instanceof DependencyUnavailableError || err instanceof CheckoutProviderError) return void back(res, PATH, 'billing_checkout_unavailable');
        throw err;
      }
      res.redirect(303, url);
    },
    'billing',
  );

  post(
    `${PATH}/pay`,
    async (req, res, s) => {
      let url: string;
      try {
        ({ url } = await billing.payInvoice(s, body(req).invoiceId));
      } catch (err) {
        if (err instanceof ConflictError) return void back(res, PATH, 'billing_invoice_not_payable');
        if (err instanceof DependencyUnavailableError || err instanceof CheckoutProviderError) return void back(res, PATH, 'billing_checkout_unavailable');
        throw err;
      }
      res.redirect(303, url);
    },
    'billing',
  );
}
