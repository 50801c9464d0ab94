import type { Client } from '@temporalio/client';
import { invoiceRunStatusQuery, type InvoiceRunState } from '../../../workflows/messages';
import { AppError } from '../../errors';
import { csrfField, html, raw, table, type Html } from '../html';
import type { ConsoleOperations } from '../operations';
import { BILLING, body, type PageKit } from './kit';

/** Starting an invoice run (dry run first) and following its progress live (htmx polls the progress fragment). */
export function invoiceRunsPages({ get, post, send }: PageKit, ops: ConsoleOperations, temporal: { client: Client } | undefined): void {
  get('/console/invoice-runs', BILLING, async (req, res, s) => {
    const lastMonth = new Date(Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth() - 1, 1)).toISOString().slice(0, 7);
    send(
      res,
      s,
      req,
      'Invoice runs',
      html`<form method="post" action="/console/invoice-runs">${csrfField(s.csrf)}
<fieldset><legend>Invoice a period</legend>
<label for="period">Period (YYYY-MM)</label><input id="period" name="period" value="${lastMonth}" pattern="\\d{4}-\\d{2}" required>
<label><input type="checkbox" name="dryRun" value="1" checked> Dry run: compute totals without writing (do this first)</label>
<label><input type="checkbox" name="force" value="1"> Start before the period end plus the grace window</label>
<div><button type="submit">Start</button></div></fieldset></form>`,
      '/console/invoice-runs',
    );
  });

  post(
    '/console/invoice-runs',
    BILLING,
    async (req, res) => {
      if (!ops.runs) throw new AppError('invoice runs need Temporal');
      const b = body(req);
      const r = await ops.runs.start({ period: b.period, dryRun: b.dryRun === '1', force: b.force === '1', rerun: true });
      res.redirect(303, `/console/invoice-runs/view?id=${encodeURIComponent(r.workflowId)}`);
    },
    () => '/console/invoice-runs',
  );

  async function runState(workflowId: string): Promise<InvoiceRunState | null> {
    if (!temporal) return null;
    const h = temporal.client.workflow.getHandle(workflowId);
    const d = await h.describe();
    if (d.status.name === 'COMPLETED') return (await h.result()) as InvoiceRunState;
    try {
      return await h.query(invoiceRunStatusQuery);
    } catch {
      return null;
    }
  }
  const progress = (id: string, st: InvoiceRunState | null): Html => {
    const finished = st?.status === 'completed';
    const pct = st && st.total ? Math.round((100 * st.done) / st.total) : finished ? 100 : 0;
    return html`<div id="progress" ${finished ? '' : raw(`hx-get="/console/invoice-runs/progress?id=${encodeURIComponent(id)}" hx-trigger="every 1s" hx-swap="outerHTML"`)} aria-live="polite">
  <p><strong>${st ? st.status : 'waiting for a worker'}</strong>${st?.dryRun ? ' (dry run)' : ''}: ${String(pct)} %</p>
  <progress max="100" value="${String(pct)}" aria-label="Invoice run progress">${String(pct)} %</progress>
  ${st
    ? html`<p>accounts ${String(st.total)}${st.listingDone ? '' : '+'} · done ${String(st.done)} · invoiced ${String(st.invoiced)} · existing ${String(st.existing)} · skipped ${String(st.skipped)} · failed ${String(st.failed)}</p>
  <p>Totals: ${Object.entries(st.totals).map(([c, v]) => `${v} ${c}`).join(', ') || '0'}</p>
  ${st.failures.length ? table(['Account', 'Reason'], st.failures.map((f) => [html`<a href="/console/accounts/${f.accountId}">${f.accountId}</a>`, html`${f.reason}`]), 'Failed accounts') : ''}
  ${finished && st.dryRun ? html`<form method="post" action="/console/invoice-runs">${csrfField('__CSRF__')}<input type="hidden" name="period" value="${st.period}"><input type="hidden" name="force" value="1"><button type="submit">Run ${st.period} for real</button></form>` : ''}
  ${finished && !st.dryRun ? html`<p><a href="/console/invoices?period=${st.period}">Invoices of ${st.period}</a></p>` : ''}`
    : ''}
</div>`;
  };
  get('/console/invoice-runs/view', BILLING, async (req, res, s) => {
    const id = String(req.query.id ?? '');
    const st = await runState(id);
    send(res, s, req, `Invoice run ${id}`, raw(progress(id, st).value.replace('__CSRF__', s.csrf)), '/console/invoice-runs');
  });
  get('/console/invoice-runs/progress', BILLING, async (req, res, s) => {
    const id = String(req.query.id ?? '');
    res.type('html').send(progress(id, await runState(id)).value.replace('__CSRF__', s.csrf));
  });
}
