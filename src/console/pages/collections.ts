import type { Request } from 'express';
import { NotFoundError } from '../../errors';
import { DUNNING_VIEW_INVOICES, type DunningTimelineStep } from '../../invoicing/dunning.service';
import { csrfField, html, table, type Html } from '../html';
import type { ConsoleOperations } from '../operations';
import type { ConsoleSession } from '../session';
import { back, BILLING, body, param, type PageKit } from './kit';

/**
 * An account's collections (docs/collections.md), on the account page: each
 * postpaid invoice's payment status, its applied payments and its dunning
 * timeline; whether dunning is paused and the suspension in force; and the
 * forms billing staff act with: pause or resume dunning, reinstate, record a
 * bank transfer, write off. Every form posts through the page kit (session,
 * role, CSRF token); the services validate (a bad value is an error message on
 * the page) and the actor is the signed-in staff member.
 */

const isSettled = (status: string | null | undefined) => status === 'paid' || status === 'void' || status === 'uncollectible';
const today = () => new Date().toISOString().slice(0, 10);

function statusBadge(status: string | null | undefined): Html {
  const kind = status === 'overdue' || status === 'uncollectible' ? 'bad' : status === 'paid' ? 'ok' : status === 'partially_paid' ? 'warn' : '';
  return html`<span class="badge ${kind}">${(status ?? 'none').replace('_', ' ')}</span>`;
}

function timeline(number: string, steps: DunningTimelineStep[] | undefined, paused: boolean): Html {
  if (!steps) return html`<p class="muted">No dunning for this invoice.</p>`;
  const next = steps.find((st) => st.doneAt === null);
  return html`${table(
    ['Step', 'Kind', 'Due at', 'Done at', 'Outcome'],
    steps.map((st) => [html`${st.name}`, html`${st.kind}`, html`${st.dueAt}`, html`${st.doneAt ?? '—'}`, html`${st.outcome ?? 'not yet'}`]),
    `Dunning timeline of ${number}`,
  )}
<p>${next ? html`Next: <strong>${next.name}</strong> (${next.kind}) at ${next.dueAt}${paused ? ', or when dunning is resumed if that is later' : ''}.` : 'No step left.'}</p>`;
}

/**
 * Mounts the forms and returns the section's renderer. The operations are the
 * admin API's: a payment or write-off tells the invoice's dunning workflow,
 * and resuming dunning signals the account's waiting workflows, when the
 * server has a Temporal client (without, the workflows look again on their own).
 */
export function collectionsPages({ post }: PageKit, ops: ConsoleOperations) {
  const { payments } = ops;
  const accountPage = (req: Request) => `/console/accounts/${encodeURIComponent(param(req, 'id'))}`;

  /** The invoice, if it is the account's (a form for another account's invoice is refused as not found). */
  async function invoiceOf(accountId: string, invoiceId: string) {
    const inv = await payments.get(invoiceId);
    if (inv.accountId !== accountId) throw new NotFoundError(`invoice ${invoiceId} is not an invoice of this account`);
    return inv;
  }

  post(
    '/console/accounts/:id/dunning/pause',
    BILLING,
    async (req, res, s) => {
      const accountId = param(req, 'id');
      const r = await ops.dunning.pause(accountId, { reason: body(req).reason ?? '' }, s.actor);
      back(res, accountPage(req), r.paused ? 'dunning_paused' : 'dunning_already_paused');
    },
    accountPage,
  );

  post(
    '/console/accounts/:id/dunning/resume',
    BILLING,
    async (req, res, s) => {
      const accountId = param(req, 'id');
      const r = await ops.dunning.resume(accountId, s.actor);
      back(res, accountPage(req), r.resumed ? 'dunning_resumed' : 'dunning_not_paused');
    },
    accountPage,
  );

  post(
    '/console/accounts/:id/reinstate',
    BILLING,
    async (req, res, s) => {
      const accountId = param(req, 'id');
      const r = await ops.suspension.reinstate({ accountId, reason: body(req).reason ?? '', actor: s.actor });
      back(res, accountPage(req), r.reinstated ? 'account_reinstated' : 'account_not_suspended');
    },
    accountPage,
  );

  post(
    '/console/accounts/:id/invoices/:invoiceId/payments',
    BILLING,
    async (req, res, s) => {
      const accountId = param(req, 'id');
      const invoiceId = param(req, 'invoiceId');
      await invoiceOf(accountId, invoiceId);
      const b = body(req);
      const r = await payments.recordPayment(invoiceId, { amount: b.amount ?? '', paidOn: b.paidOn ?? '', reference: b.reference ?? '' }, s.actor);
      back(res, accountPage(req), r.applied ? 'payment_recorded' : 'payment_already_recorded');
    },
    accountPage,
  );

  post(
    '/console/accounts/:id/invoices/:invoiceId/write-off',
    BILLING,
    async (req, res, s) => {
      const accountId = param(req, 'id');
      const invoiceId = param(req, 'invoiceId');
      await invoiceOf(accountId, invoiceId);
      const r = await payments.writeOff(invoiceId, { reason: body(req).reason ?? '' }, s.actor);
      back(res, accountPage(req), r.applied ? 'invoice_written_off' : 'invoice_already_written_off');
    },
    accountPage,
  );

  /** The "Collections" section of the account page. */
  return async function collectionsSection(accountId: string, s: ConsoleSession): Promise<Html> {
    // The latest postpaid invoices with something due (DUNNING_VIEW_INVOICES), paid and void ones included.
    const [dunning, suspended] = await Promise.all([ops.dunning.account(accountId), ops.suspension.status(accountId)]);
    const details = await Promise.all(dunning.invoices.map((i) => payments.get(i.invoiceId)));
    const stepsOf = new Map(dunning.invoices.map((i) => [i.invoiceId, i.steps]));
    const numberOf = new Map(details.map((d) => [d.invoiceId, d.number]));
    const csrf = csrfField(s.csrf);
    const base = `/console/accounts/${accountId}`;

    const pausePart = dunning.paused
      ? html`<p role="status"><strong>Dunning is paused</strong> for this account since ${dunning.paused.pausedAt} by ${dunning.paused.pausedBy}: “${dunning.paused.reason}”.</p>
<form method="post" action="${base}/dunning/resume">${csrf}<button type="submit">Resume dunning</button></form>`
      : html`<p>Dunning is running: reminders go out on schedule.</p>
<form method="post" action="${base}/dunning/pause">${csrf}<fieldset><legend>Pause dunning for this account</legend>
<label for="pause-reason">Reason (required, 3–500 characters)</label><input id="pause-reason" name="reason" required minlength="3" maxlength="500">
<div><button type="submit">Pause dunning</button></div></fieldset></form>`;

    const suspension = suspended.current;
    const suspensionPart = suspension
      ? html`<p role="status"><span class="badge bad">suspended</span> since ${suspension.suspendedAt} by ${suspension.suspendedBy}${
          suspension.invoiceId ? html` for invoice <a href="/console/invoices/${suspension.invoiceId}">${numberOf.get(suspension.invoiceId) ?? suspension.invoiceId}</a>` : ''
        }: “${suspension.reason}”. The gateway refuses the account's model calls.</p>
<form method="post" action="${base}/reinstate">${csrf}<fieldset><legend>Reinstate the account</legend>
<label for="reinstate-reason">Reason (required, 3–500 characters)</label><input id="reinstate-reason" name="reason" required minlength="3" maxlength="500">
<div><button type="submit">Reinstate</button></div></fieldset></form>`
      : html`<p>The account is not suspended.</p>`;

    const invoiceParts = details.map((d) => {
      const p = d.payment;
      const open = p !== null && !isSettled(p.status);
      const writable = p !== null && p.status !== 'paid' && p.status !== 'void' && d.writeOff === null;
      const id = d.invoiceId;
      return html`<details${p?.status === 'overdue' ? html` open` : ''}><summary>Invoice ${d.number ?? id} · ${statusBadge(p?.status)} · outstanding ${p?.outstanding ?? '—'} ${d.currency}</summary>
${table(
  ['Source', 'Reference', 'Paid on', 'Amount', 'Credited to account', 'Recorded by'],
  d.applications.map((a) => [html`${a.source}`, html`${a.reference}`, html`${a.paidOn}`, html`${a.amount}`, html`${a.creditedToAccount}`, html`${a.recordedBy}`]),
  `Payments applied to ${d.number ?? id}`,
)}
${d.writeOff ? html`<p>Written off ${d.writeOff.amount} ${d.currency} at ${d.writeOff.writtenOffAt} by ${d.writeOff.writtenOffBy}: “${d.writeOff.reason}”.</p>` : ''}
${timeline(d.number ?? id, stepsOf.get(id), dunning.paused !== null)}
${open || p?.status === 'uncollectible'
  ? html`<form method="post" action="${base}/invoices/${id}/payments">${csrf}<fieldset><legend>Record a bank transfer for ${d.number ?? id}</legend>
<label for="pay-amount-${id}">Amount received (${d.currency}, e.g. 120.50)</label><input id="pay-amount-${id}" name="amount" required maxlength="32" inputmode="decimal">
<label for="pay-date-${id}">Date it arrived (YYYY-MM-DD)</label><input id="pay-date-${id}" name="paidOn" required maxlength="10" value="${today()}">
<label for="pay-ref-${id}">Bank reference (one record per reference)</label><input id="pay-ref-${id}" name="reference" required maxlength="100">
<div><button type="submit">Record transfer</button></div></fieldset></form>`
  : ''}
${writable
  ? html`<form method="post" action="${base}/invoices/${id}/write-off">${csrf}<fieldset><legend>Write off ${d.number ?? id}</legend>
<label for="wo-reason-${id}">Reason (required, 3–500 characters)</label><input id="wo-reason-${id}" name="reason" required minlength="3" maxlength="500">
<div><button type="submit" class="secondary">Write off</button></div></fieldset></form>`
  : ''}
</details>`;
    });

    return html`<section aria-labelledby="collections"><h2 id="collections">Collections</h2>
${pausePart}
${suspensionPart}
${table(
  ['Invoice', 'Payment status', 'Amount due', 'Amount paid', 'Outstanding', 'Due date'],
  details.map((d) => [
    html`<a href="/console/invoices/${d.invoiceId}">${d.number ?? d.invoiceId}</a>`,
    statusBadge(d.payment?.status),
    html`${d.amountDue} ${d.currency}`,
    html`${d.payment?.amountPaid ?? '—'}`,
    html`${d.payment?.outstanding ?? '—'}`,
    html`${d.dueDate ?? '—'}`,
  ]),
  `Postpaid invoices (the latest ${DUNNING_VIEW_INVOICES})`,
)}
${invoiceParts}
</section>`;
  };
}
