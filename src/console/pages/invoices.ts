import { csrfField, html, table } from '../html';
import type { ConsoleOperations } from '../operations';
import { back, BILLING, body, param, type PageKit } from './kit';

/** Invoices and credit notes: the list by period, an invoice with its lines and PDF, and voiding with a credit note. */
export function invoicesPages({ get, post, send }: PageKit, ops: ConsoleOperations): void {
  get('/console/invoices', BILLING, async (req, res, s) => {
    const period = typeof req.query.period === 'string' && req.query.period ? req.query.period : undefined;
    const list = (await ops.invoices.list({ ...(period ? { period } : {}), limit: 200 })) as any[];
    send(
      res,
      s,
      req,
      period ? `Invoices of ${period}` : 'Invoices',
      html`<form method="get" action="/console/invoices"><label for="period">Period</label><input id="period" name="period" value="${period ?? ''}" placeholder="YYYY-MM"> <button type="submit">Show</button></form>
${table(
  ['Number', 'Kind', 'Status', 'Payment', 'Account', 'Period', 'Total', 'Due', 'PDF'],
  list.map((i) => [
    html`<a href="/console/invoices/${i.id}">${i.number ?? '(draft)'}</a>`,
    html`${i.kind}`,
    html`${i.status}`,
    html`${i.paymentStatus ? `${String(i.paymentStatus).replace('_', ' ')} (paid ${i.amountPaid})` : '—'}`,
    html`<a href="/console/accounts/${i.accountId}">${i.customer?.name ?? i.accountId}</a>`,
    html`${i.period}`,
    html`${i.total} ${i.currency}`,
    html`${i.amountDue}`,
    html`<a href="/console/invoices/${i.id}.pdf">PDF<span class="muted"> of ${i.number ?? ''}</span></a>`,
  ]),
  'Invoices and credit notes',
)}`,
      '/console/invoices',
    );
  });
  get('/console/invoices/:id.pdf', BILLING, async (req, res) => {
    const pdf = await ops.render.pdf(param(req, 'id'));
    res.type('application/pdf').setHeader('content-disposition', `attachment; filename="${param(req, 'id')}.pdf"`);
    res.send(pdf);
  });
  get('/console/invoices/:id', BILLING, async (req, res, s) => {
    const inv = (await ops.invoices.get(param(req, 'id'))) as any;
    send(
      res,
      s,
      req,
      `Invoice ${inv.number ?? inv.id}`,
      html`<p>${inv.kind} · ${inv.status} · period ${inv.period} · total <strong>${inv.total} ${inv.currency}</strong> · due ${inv.amountDue} · <a href="/console/invoices/${inv.id}.pdf">Download PDF</a></p>
${table(['#', 'Description', 'Tokens', 'Price / M', 'Amount'], (inv.lines ?? []).map((l: any) => [html`${l.position}`, html`${l.description}`, html`${l.quantity}`, html`${l.unitPricePerMtok}`, html`${l.amount}`]), 'Lines')}
${inv.status === 'finalized' && inv.kind === 'invoice'
  ? html`<form method="post" action="/console/invoices/${inv.id}/void">${csrfField(s.csrf)}<fieldset><legend>Void with a credit note</legend><label for="reason">Reason</label><input id="reason" name="reason" required minlength="3"><div><button type="submit">Void</button></div></fieldset></form>`
  : ''}`,
      '/console/invoices',
    );
  });
  post(
    '/console/invoices/:id/void',
    BILLING,
    async (req, res, s) => {
      await ops.invoices.void({ id: param(req, 'id'), reason: body(req).reason }, s.actor);
      back(res, `/console/invoices/${param(req, 'id')}`, 'invoice_voided');
    },
    (req) => `/console/invoices/${param(req, 'id')}`,
  );
}
