import { csrfField, html, table } from '../html';
import type { ConsoleOperations } from '../operations';
import { back, BILLING, body, opt, param, type PageKit } from './kit';

/** Reconciliation reports: starting one for a day or a month, and a report's discrepancies with what to do about each. */
export function reconciliationPages({ get, post, send }: PageKit, ops: ConsoleOperations): void {
  get('/console/reconciliation', BILLING, async (req, res, s) => {
    const list = await ops.reconciliation.list({ limit: 50 });
    send(
      res,
      s,
      req,
      'Reconciliation',
      html`<form method="post" action="/console/reconciliation">${csrfField(s.csrf)}<fieldset><legend>Reconcile now</legend>
<label for="day">A UTC day (YYYY-MM-DD)</label><input id="day" name="day" placeholder="2026-11-25">
<label for="rperiod">or a month (YYYY-MM)</label><input id="rperiod" name="period" placeholder="2026-11">
<div><button type="submit">Reconcile</button></div></fieldset></form>
${table(
  ['Report', 'Window', 'Verdict', 'Found', 'Repaired', 'Needs attention', 'New', 'Started'],
  list.items.map((r) => [
    html`<a href="/console/reconciliation/${r.id}">${r.id.slice(0, 8)}</a>`,
    html`${r.scope} ${r.label}`,
    html`<span class="badge ${r.verdict === 'needs_attention' ? 'bad' : r.verdict === 'repaired' ? 'warn' : 'ok'}">${r.verdict ?? r.status}</span>`,
    html`${String(r.counts.discrepancies)}`,
    html`${String(r.counts.repaired)}`,
    html`${String(r.counts.needsAttention)}`,
    html`${String(r.counts.new)}`,
    html`${r.startedAt}`,
  ]),
  'Reports, newest first',
)}`,
      '/console/reconciliation',
    );
  });
  post(
    '/console/reconciliation',
    BILLING,
    async (req, res, s) => {
      const b = body(req);
      const r = await ops.reconciliation.start({ ...(opt(b.day) ? { day: opt(b.day) } : {}), ...(opt(b.period) ? { period: opt(b.period) } : {}) }, s.actor);
      back(res, `/console/reconciliation/${r.reportId}`, r.started ? 'reconciliation_started' : 'reconciliation_running');
    },
    () => '/console/reconciliation',
  );
  const WHAT_TO_DO: Record<string, string> = {
    payment_without_topup: 'Check the payment with the provider; if genuine, record a top-up on the account with the payment id as reference.',
    balance_mismatch: 'Find out who changed the balance; post an adjustment only once the cause is known.',
    invoice_mismatch: 'The usage under an issued invoice changed: void it with a credit note if the invoice is wrong.',
    invoice_number_gap: 'Record why the number was lost, for the auditors.',
    provider_usage_mismatch: "Compare the token figures; a steady gap is a metering bug.",
    invoice_payment_without_payment: 'Find the card payment at the provider; an application without one was recorded in error: ask engineering.',
    invoice_payment_mismatch: "Compare the application with the provider's payment (amount, account, currency) before anything else.",
    overpayment_credit_missing: "The rest of an overpayment was not credited: credit it with an adjustment naming the payment's reference.",
    overpayment_credit_mismatch: "Compare the overpayment's credit with what the payment carried above the amount due.",
    invoice_overapplied: 'More was applied than was due: credit the excess to the account and record why.',
    invoice_paid_not_covered: "The invoice was announced paid but its payments do not cover it: check its applications and credit notes.",
    provider_without_register_entry: 'Compliance: complete the provider\'s register entry (mixroute register completeness shows what is missing).',
  };
  get('/console/reconciliation/:id', BILLING, async (req, res, s) => {
    const r = await ops.reconciliation.get({ id: param(req, 'id') });
    send(
      res,
      s,
      req,
      `Reconciliation ${r.scope} ${r.label}`,
      html`<p>Verdict: <span class="badge ${r.verdict === 'needs_attention' ? 'bad' : 'ok'}">${r.verdict ?? r.status}</span> · found ${String(r.counts.discrepancies)}, repaired ${String(r.counts.repaired)}, needs attention ${String(r.counts.needsAttention)}, new ${String(r.counts.new)}</p>
${table(
  ['Kind', 'Resolution', 'Subject', 'Expected', 'Actual', 'Difference', 'What to do'],
  r.discrepancies.map((d) => [
    html`${d.kind}`,
    html`<span class="badge ${d.resolution === 'repaired' ? 'ok' : 'bad'}">${d.resolution}</span>${d.new ? '' : html` <span class="muted">(seen before)</span>`}`,
    d.accountId ? html`<a href="/console/accounts/${d.accountId}">${d.subject}</a>` : html`${d.subject}`,
    html`${d.expected ?? ''} ${d.unit}`,
    html`${d.actual ?? ''}`,
    html`${d.difference ?? ''}`,
    html`${d.resolution === 'repaired' ? `repaired: ${d.repairRef}` : (WHAT_TO_DO[d.kind] ?? '')}`,
  ]),
  'Discrepancies',
)}`,
      '/console/reconciliation',
    );
  });
}
