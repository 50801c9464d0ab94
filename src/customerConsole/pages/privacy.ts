import { csrfField, html, table, type Html } from '../../console/html';
import { DSR_TYPE_LABEL, FILED_TYPES, type ConsolePrivacyService } from '../privacy.service';
import { back, body, type CustomerPageKit } from './kit';

type Req = Awaited<ReturnType<ConsolePrivacyService['request']>>;

const STATUS_LABEL: Record<string, string> = {
  received: 'received',
  verifying: 'being started',
  in_progress: 'in progress',
  awaiting_approval: 'waiting for our review',
  completed: 'done',
  partially_completed: 'partly done',
  refused: 'refused',
  withdrawn: 'withdrawn',
  failed: 'being looked at by our privacy team',
};

const packageCell = (r: Req): Html => {
  if (r.type !== 'access' && r.type !== 'portability') return html``;
  if (!r.package) return html`<span class="muted">being prepared: reload this page in a moment</span>`;
  if (!r.package.href) return html`<span class="muted">no longer available (expired or used up): ask for a new copy</span>`;
  return html`<a href="${r.package.href}" download>Download</a> <span class="muted">(${String(r.package.downloadsLeft)} download(s) left, until ${r.package.expiresAt})</span>`;
};

/**
 * "Your privacy" (area 'privacy', every role): the signed-in user's own rights
 * as a person. A copy of their data, and correction, deletion, restriction,
 * objection and consent withdrawal, each filed as a request verified by the
 * sign-in; their requests with status and deadline; what we keep (never
 * prompts or completions) and the providers their API requests went to.
 */
export function privacyPages({ get, post, send }: CustomerPageKit, privacy: ConsolePrivacyService): void {
  get(
    '/app/privacy',
    async (req, res, s) => {
      const p = await privacy.page(s);
      const others = FILED_TYPES.filter((t) => t !== 'correction');
      send(
        res,
        s,
        req,
        'Your privacy',
        html`<p>This page is about you as a person (${s.name}), not about the account ${s.accountName}. You are signed in, so we know it is you: what you ask for here needs no further confirmation.</p>
<section aria-labelledby="no-content"><h2 id="no-content">What we never keep</h2>
  <p id="no-payload">MixRoute never keeps your prompts or completions (nor images, audio or other content): they pass through memory to the model provider and are gone. We keep only metadata about each request (time, model, tokens, cost), so a copy of your data cannot contain any content.</p>
  <div id="providers">${table(
    ['Provider', 'Countries', 'Transfer safeguard'],
    p.providers.map((x) => [html`${x.name}`, html`${x.countries.join(', ')}`, html`${x.transferLabel ?? ''}`]),
    'Model providers your API requests were sent to',
  )}</div>
</section>
<section aria-labelledby="copy"><h2 id="copy">Download a copy of your data</h2>
  <form method="post" action="/app/privacy/download">${csrfField(s.csrf)}
    <fieldset><legend>Which copy</legend>
      <label><input type="radio" name="format" value="access" checked> Everything we hold about you</label>
      <label><input type="radio" name="format" value="portability"> A portable copy (what you gave us and your usage metadata)</label>
    </fieldset>
    <div><button type="submit">Prepare my copy</button></div>
  </form>
  <p class="muted">The copy is a zip file (data.json and one CSV per table). It is prepared within a minute; the download link below works a limited number of times and expires.</p>
</section>
<section aria-labelledby="correct"><h2 id="correct">Correct your details</h2>
  <form method="post" action="/app/privacy/requests">${csrfField(s.csrf)}<input type="hidden" name="type" value="correction">
    <label>Name <input name="name" maxlength="200"></label>
    <label>Phone <input name="phone" maxlength="50"></label>
    <label>Job title <input name="job_title" maxlength="200"></label>
    <div><button type="submit">Ask for the correction</button></div>
  </form>
  <p class="muted">Fill in only what should change. Our privacy team reviews a correction before it is applied.</p>
</section>
<section aria-labelledby="rights"><h2 id="rights">Your other rights</h2>
  <form method="post" action="/app/privacy/requests">${csrfField(s.csrf)}
    <label>Request <select name="type">${others.map((t) => html`<option value="${t}">${DSR_TYPE_LABEL[t]}</option>`)}</select></label>
    <div><button type="submit">File the request</button></div>
  </form>
  <p class="muted">Deletion erases your user and signs you out for good; the law makes us keep invoices and payments for a number of years. Restriction, objection and consent withdrawal stop the use of your data beyond billing and legal duties.</p>
</section>
<section aria-labelledby="yours"><h2 id="yours">Your requests</h2>
  <div id="requests">${table(
    ['Request', 'Filed', 'Status', 'Answer due', 'Your copy'],
    p.requests.map((r) => [
      html`<a href="/app/privacy/requests/${r.id}">${DSR_TYPE_LABEL[r.type as keyof typeof DSR_TYPE_LABEL] ?? r.type}</a>`,
      html`${r.receivedAt.slice(0, 10)}`,
      html`<span data-status="${r.status}">${STATUS_LABEL[r.status] ?? r.status}</span>`,
      html`<span class="due">${r.dueDate}</span>`,
      packageCell(r),
    ]),
    'Requests you filed here, newest first',
  )}</div>
</section>`,
        '/app/privacy',
      );
    },
    'privacy',
  );

  get(
    '/app/privacy/requests/:id',
    async (req, res, s) => {
      const r = await privacy.request(s, String(req.params.id));
      send(
        res,
        s,
        req,
        'Your privacy request',
        html`<dl id="request">
  <dt>Request</dt><dd>${DSR_TYPE_LABEL[r.type as keyof typeof DSR_TYPE_LABEL] ?? r.type}</dd>
  <dt>Filed</dt><dd>${r.receivedAt}</dd>
  <dt>Status</dt><dd data-status="${r.status}">${STATUS_LABEL[r.status] ?? r.status}</dd>
  <dt>Answer due</dt><dd class="due">${r.dueDate}${r.extended ? ' (extended)' : ''}</dd>
  ${r.closedAt ? html`<dt>Answered</dt><dd>${r.closedAt}</dd>` : ''}
  ${r.type === 'access' || r.type === 'portability' ? html`<dt>Your copy</dt><dd>${packageCell(r)}</dd>` : ''}
</dl>
<p><a href="/app/privacy">Back to your privacy</a></p>`,
        '/app/privacy',
      );
    },
    'privacy',
  );

  post(
    '/app/privacy/download',
    async (req, res, s) => {
      const r = await privacy.download(s, body(req));
      back(res, '/app/privacy', r.existing ? 'privacy_already_open' : 'privacy_copy_requested');
    },
    'privacy',
  );

  post(
    '/app/privacy/requests',
    async (req, res, s) => {
      const r = await privacy.file(s, body(req));
      back(res, '/app/privacy', r.existing ? 'privacy_already_open' : 'privacy_request_filed');
    },
    'privacy',
  );
}
