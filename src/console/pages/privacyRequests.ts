import { correctionApproval } from '../dsrCorrection';
import { csrfField, html, raw, table, type Html } from '../html';
import type { ConsoleOperations } from '../operations';
import { back, body, COMPLIANCE, opt, param, type PageKit } from './kit';

/** Rights requests (DSR): the list by due date, a request's timeline and actions, and the audited package download. */
export function privacyRequestsPages({ get, post, send }: PageKit, ops: ConsoleOperations): void {
  get('/console/dsr', COMPLIANCE, async (req, res, s) => {
    const q = req.query as Record<string, string | undefined>;
    let list = await ops.dsr.list({ ...(opt(q.status) ? { status: opt(q.status) } : { status: 'open' }), ...(opt(q.type) ? { type: opt(q.type) } : {}), limit: 500 });
    if (opt(q.jurisdiction)) list = list.filter((r) => r.jurisdiction === q.jurisdiction);
    if (opt(q.due_before)) list = list.filter((r) => r.dueDate <= q.due_before!);
    const now = Date.now();
    const daysLeft = (dueAt: string) => Math.ceil((Date.parse(dueAt) - now) / 86_400_000);
    const select = (name: string, label: string, values: string[], current?: string) =>
      html`<label for="${name}">${label}</label><select id="${name}" name="${name}"><option value="">any</option>${values.map((v) => html`<option value="${v}"${v === current ? raw(' selected') : ''}>${v}</option>`)}</select>`;
    send(
      res,
      s,
      req,
      'Rights requests',
      html`<form method="get" action="/console/dsr" class="filters"><fieldset><legend>Filter</legend>
${select('status', 'Status', ['open', 'received', 'verifying', 'awaiting_approval', 'in_progress', 'failed', 'completed', 'partially_completed', 'refused', 'withdrawn'], q.status)}
${select('type', 'Type', ['access', 'portability', 'correction', 'deletion', 'restriction', 'objection', 'consent_withdrawal', 'payload'], q.type)}
${select('jurisdiction', 'Jurisdiction', ['gdpr', 'uk_gdpr', 'ccpa', 'unknown'], q.jurisdiction)}
<label for="due_before">Due before (YYYY-MM-DD)</label><input id="due_before" name="due_before" value="${q.due_before ?? ''}">
<div><button type="submit">Apply</button></div></fieldset></form>
<table><caption>Requests by due date (overdue first)</caption><thead><tr><th scope="col">Request</th><th scope="col">Type</th><th scope="col">Status</th><th scope="col">Jurisdiction</th><th scope="col">Due</th><th scope="col">Days left</th></tr></thead><tbody>
${list.length
  ? list.map((r) => {
      const left = daysLeft(r.dueAt);
      const open = !['completed', 'partially_completed', 'refused', 'withdrawn'].includes(r.status);
      const cls = open && r.overdue ? 'overdue' : open && left <= 7 ? 'due-soon' : '';
      return html`<tr class="${cls}"><td><a href="/console/dsr/${r.id}">${r.id.slice(0, 8)}</a></td><td>${r.type}</td><td>${r.status}</td><td>${r.jurisdiction}</td><td>${r.dueDate}</td><td>${open ? (r.overdue ? html`<span class="badge bad">OVERDUE</span>` : html`${String(left)}${left <= 7 ? html` <span class="badge warn">due soon</span>` : ''}`) : '—'}</td></tr>`;
    })
  : html`<tr><td colspan="6">None.</td></tr>`}
</tbody></table>
${await processorSection(ops)}`,
      '/console/dsr',
    );
  });

  get('/console/dsr/:id', COMPLIANCE, async (req, res, s) => {
    const r = await ops.dsr.get(param(req, 'id'));
    const open = !['completed', 'partially_completed', 'refused', 'withdrawn', 'failed'].includes(r.status);
    const form = (action: string, legend: string, fields: Html, button: string) =>
      html`<form method="post" action="/console/dsr/${r.id}/${action}">${csrfField(s.csrf)}<fieldset><legend>${legend}</legend>${fields}<div><button type="submit">${button}</button></div></fieldset></form>`;
    const actions: Html[] = [];
    if (open && !r.verifiedAt)
      actions.push(
        form(
          'verify',
          'Verify identity',
          html`<label for="method">Method</label><select id="method" name="method"><option value="document">document</option><option value="account_login">account login</option><option value="video_call">video call</option><option value="other">other</option></select><label for="note">How was identity checked?</label><input id="note" name="note" required minlength="3">`,
          'Record verification',
        ),
      );
    if (open && !r.extended) actions.push(form('extend', 'Extend the deadline (once)', html`<label for="xreason">Reason the subject is told</label><input id="xreason" name="reason" required minlength="10">`, 'Extend'));
    if (open && r.status === 'awaiting_approval') actions.push(form('approve', 'Approve the correction', correctionApproval(r.correction), 'Approve'));
    if (open && r.status !== 'in_progress')
      actions.push(
        form(
          'refuse',
          'Refuse (whole request, or items)',
          html`<label for="ground">Ground</label><select id="ground" name="ground">${['identity_not_verified', 'security', 'trade_secrets', 'third_party_rights', 'technical_feasibility', 'law', 'manifestly_unfounded_or_excessive'].map((g) => html`<option value="${g}">${g}</option>`)}</select>
<label for="explanation">Explanation for the subject</label><textarea id="explanation" name="explanation" required minlength="10"></textarea>
<label for="items">Items (comma-separated; empty = the whole request)</label><input id="items" name="items">`,
          'Refuse',
        ),
      );
    if (open) actions.push(form('withdraw', 'The subject withdrew the request', html``, 'Mark withdrawn'));
    const hasPackage = (r.response as { package?: unknown } | null)?.package;
    send(
      res,
      s,
      req,
      `Request ${r.id.slice(0, 8)}: ${r.type}`,
      html`<p><strong>${r.status}</strong>${r.overdue && open ? html` <span class="badge bad">OVERDUE</span>` : ''} · due ${r.dueDate}${r.extended ? ' (extended)' : ''} · ${r.jurisdiction} · received ${r.receivedAt} via ${r.channel} · identity ${r.verifiedAt ? `verified (${r.verificationMethod})` : 'not verified'}</p>
${hasPackage ? html`<p><a href="/console/dsr/${r.id}/package">Download the package (audited)</a></p>` : ''}
${r.failureReason ? html`<p role="alert">Fulfilment failed (${r.failureReason}): the subject has no answer yet. Answer another way or file a new request.</p>` : ''}
<div class="grid"><section aria-labelledby="tl"><h2 id="tl">Timeline</h2><ol class="timeline">${r.events.map((e: any) => html`<li><time>${e.at}</time> — ${e.action} <span class="muted">by ${e.actor}</span></li>`)}</ol>
${r.erasureEvidence.length ? table(['Category', 'Action', 'Rows'], r.erasureEvidence.map((e: any) => [html`${e.category}`, html`${e.action}`, html`${String(e.rows)}`]), 'Erasure evidence') : ''}</section>
<section aria-labelledby="act"><h2 id="act">Actions</h2>${actions.length ? actions : html`<p>Closed: no further actions.</p>`}</section></div>`,
      '/console/dsr',
    );
  });
  for (const action of ['verify', 'extend', 'approve', 'refuse', 'withdraw'] as const) {
    post(
      `/console/dsr/:id/${action}`,
      COMPLIANCE,
      async (req, res, s) => {
        const id = param(req, 'id');
        const b = body(req);
        if (action === 'verify') await ops.dsr.verify(id, { method: b.method, note: b.note }, s.actor);
        if (action === 'extend') await ops.dsr.extend(id, { reason: b.reason }, s.actor);
        if (action === 'approve') await ops.dsr.approve(id, s.actor);
        if (action === 'withdraw') await ops.dsr.withdraw(id, s.actor);
        if (action === 'refuse') {
          const items = (b.items ?? '').split(',').map((x) => x.trim()).filter(Boolean);
          await ops.dsr.refuse(id, { ground: b.ground, explanation: b.explanation, ...(items.length ? { items } : {}) }, s.actor);
        }
        back(res, `/console/dsr/${id}`, `dsr_${action}`);
      },
      (req) => `/console/dsr/${param(req, 'id')}`,
    );
  }
  get('/console/dsr/:id/package', COMPLIANCE, async (req, res, s) => {
    const zip = await ops.dsr.staffDownload(param(req, 'id'), s.actor);
    res.type('application/zip').setHeader('content-disposition', `attachment; filename="dsr-${param(req, 'id').slice(0, 8)}.zip"`);
    res.setHeader('cache-control', 'no-store');
    res.send(zip);
  });
}

/**
 * Read-only: the latest processor-mode requests (people who are not users,
 * about a customer's API traffic) with their forward's state. Closing is on
 * the admin API and the CLI (docs/privacy-requests.md).
 */
async function processorSection(ops: ConsoleOperations): Promise<Html> {
  if (!ops.processorMode) return html``;
  const rows = await ops.processorMode.list({ limit: 50 });
  const state = (r: (typeof rows)[number]) =>
    r.closedAt
      ? html`closed ${r.closedAt.slice(0, 10)} <span class="muted">by ${r.closedBy ?? ''}: ${r.closeReason ?? ''}</span>`
      : r.overdue
        ? html`<span class="badge bad">OVERDUE</span>`
        : r.forwardedTo
          ? html`open`
          : r.needsStaff
            ? html`<span class="badge warn">needs staff</span>`
            : html`—`;
  return html`<table><caption>Requests about a customer's API traffic (processor mode; latest 50)</caption><thead><tr><th scope="col">Reference</th><th scope="col">Type</th><th scope="col">Received</th><th scope="col">Outcome</th><th scope="col">Customer named</th><th scope="col">Forwarded to</th><th scope="col">Due</th><th scope="col">Forward</th></tr></thead><tbody>
${rows.length
  ? rows.map((r) => html`<tr class="${r.overdue ? 'overdue' : ''}"><td>${r.reference}</td><td>${r.type}</td><td>${r.receivedAt.slice(0, 10)}</td><td>${r.outcome}</td><td>${r.namedCustomer ?? r.namedAccountId ?? '—'}</td><td>${r.forwardedTo ?? '—'}</td><td>${r.dueAt ? r.dueAt.slice(0, 10) : '—'}</td><td>${state(r)}</td></tr>`)
  : html`<tr><td colspan="8">None.</td></tr>`}
</tbody></table>`;
}
