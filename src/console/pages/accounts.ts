import type { AccountPageService } from '../../accounts/accountPage.service';
import { csrfField, html, table, type Html } from '../html';
import type { ConsoleSession } from '../session';
import type { ConsoleOperations } from '../operations';
import { back, BILLING, body, opt, param, type PageKit } from './kit';

/** The account list and an account's page: balance, usage chart, ledger entries, holds and payments, and the form to record an entry. */
export function accountsPages(
  { get, post, send }: PageKit,
  ops: ConsoleOperations,
  accountPage: AccountPageService,
  /** The "Collections" section (./collections.ts). */
  collections?: (accountId: string, s: ConsoleSession) => Promise<Html>,
): void {
  get('/console/accounts', BILLING, async (req, res, s) => {
    const q = typeof req.query.q === 'string' ? req.query.q.trim() : '';
    const rows = await accountPage.search(q);
    send(
      res,
      s,
      req,
      'Accounts',
      html`<form method="get" action="/console/accounts" role="search"><label for="q">Find an account by name, id or VAT id</label><input id="q" name="q" value="${q}"> <button type="submit">Search</button></form>
${table(
  ['Name', 'Country', 'VAT id', 'Plan', 'Status'],
  rows.map((a) => [html`<a href="/console/accounts/${a.id}">${a.name}</a>`, html`${a.country ?? ''}`, html`${a.vat_id ?? ''}`, html`${a.plan}`, html`${a.status}`]),
  q ? `Accounts matching “${q}”` : 'Accounts',
)}`,
      '/console/accounts',
    );
  });

  get('/console/accounts/:id', BILLING, async (req, res, s) => {
    const id = param(req, 'id');
    const account = await ops.getAccount({ id });
    const before = typeof req.query.before === 'string' ? req.query.before : undefined;
    const bal = await ops.balance({ accountId: id, limit: 20, ...(before ? { before } : {}) });
    const { holds, payments, usage } = await accountPage.activity(id);
    const keys = await ops.listKeys({ id, limit: 50 });
    const days = [...new Set(usage.map((u) => u.day as string))];
    const models = [...new Set(usage.map((u) => u.model as string))];
    const chart = { labels: days, datasets: models.map((m) => ({ label: m || '(none)', data: days.map((d) => Number(usage.find((u) => u.day === d && u.model === m)?.tokens ?? 0)) })) };
    const a = account as Record<string, unknown>;
    const collectionsPart = collections ? await collections(id, s) : '';
    send(
      res,
      s,
      req,
      `Account: ${String(a.name)}`,
      html`<div class="grid">
  <section aria-labelledby="bal"><h2 id="bal">Balance</h2><p class="figure">${bal.balanceRounded} ${bal.currency}</p>
    <p>Held for requests in flight: ${bal.held} · spendable: ${bal.spendable} · unsettled usage: ${bal.pendingUsage.events} requests, ${bal.pendingUsage.cost}</p>
    <p class="muted">${a.plan} · ${a.country ?? 'no country'} · VAT id ${a.vat_id ?? '—'} · id ${id} · <a href="/console/accounts/${id}/webhooks">webhooks</a></p></section>
  <section aria-labelledby="usage"><h2 id="usage">Usage, last 30 days</h2>
    <canvas id="usage-chart" role="img" aria-label="Tokens per day and model" data-chart="${JSON.stringify(chart)}"></canvas>
    ${table(['Day', 'Model', 'Tokens', 'Cost'], usage.map((u) => [html`${u.day}`, html`${u.model || '(none)'}`, html`${String(u.tokens)}`, html`${u.cost}`]), 'Usage by day and model')}</section>
</div>
${collectionsPart}
<section aria-labelledby="entry"><h2 id="entry">Record a ledger entry</h2>
<form method="post" action="/console/accounts/${id}/entries">${csrfField(s.csrf)}
<fieldset><legend>Top-up, grant, refund or adjustment</legend>
<label for="kind">Kind</label><select id="kind" name="kind"><option value="topup">top-up (payment received)</option><option value="grant">grant (free credit)</option><option value="refund">refund (debit)</option><option value="adjustment">adjustment (+/−)</option></select>
<label for="amount">Amount (USD, e.g. 25.00; adjustments may be negative)</label><input id="amount" name="amount" required inputmode="decimal">
<label for="reference">Reference (payment id, ticket; one entry per reference)</label><input id="reference" name="reference" required>
<label for="reason">Reason (required for refunds and adjustments)</label><input id="reason" name="reason">
<div><button type="submit">Record</button></div></fieldset></form></section>
${table(
  ['Id', 'When', 'Kind', 'Amount', 'Balance after', 'Reference', 'By', 'Reason'],
  bal.entries.map((e: any) => [html`${e.id}`, html`${e.createdAt}`, html`${e.kind}`, html`${e.amount}`, html`${e.balanceAfter}`, html`${e.reference}`, html`${e.actor}`, html`${e.reason ?? ''}`]),
  'Ledger entries, newest first',
)}
${bal.nextPage ? html`<p><a href="/console/accounts/${id}?before=${bal.nextPage.before}">Older entries</a></p>` : ''}
${table(
  ['Name', 'Prefix', 'Kind', 'Expires', 'Revoked'],
  keys.map((k) => [html`${k.name ?? ''}`, html`${k.prefix}`, html`${k.kind}`, html`${k.expiresAt ?? ''}`, html`${k.revokedAt ?? ''}`]),
  'API keys (first 50; the CLI and admin API list all)',
)}
<section aria-labelledby="mgmt"><h2 id="mgmt">Create a management key</h2>
<p>A management key lets the customer create, change and revoke its own inference keys and read its spend (/v1/keys); it cannot make model calls. The key is shown once.</p>
<form method="post" action="/console/accounts/${id}/management-keys">${csrfField(s.csrf)}
<label for="mk-name">Name</label><input id="mk-name" name="name" maxlength="200">
<label for="mk-expires">Expires at (optional, ISO 8601 UTC such as 2027-12-31T23:59:59Z)</label><input id="mk-expires" name="expiresAt">
<div><button type="submit">Create management key</button></div></form></section>
${table(['Hold', 'Amount', 'Settled', 'Expires'], holds.map((h) => [html`${h.id}`, html`${h.amount}`, html`${h.settled}`, html`${new Date(h.expires_at).toISOString()}`]), 'Open balance holds')}
${table(['Provider', 'Payment', 'Amount', 'Status', 'Received'], payments.map((p) => [html`${p.provider}`, html`${p.provider_payment_id}`, html`${p.amount} ${p.currency}`, html`${p.status}`, html`${new Date(p.received_at).toISOString()}`]), 'Payments')}`,
      '/console/accounts',
    );
  });

  // Answers with a page, not a redirect: the key is in this response only, never in a URL or a later page.
  post(
    '/console/accounts/:id/management-keys',
    BILLING,
    async (req, res, s) => {
      const id = param(req, 'id');
      const b = body(req);
      const created = await ops.createKey({ accountId: id, kind: 'management', name: opt(b.name), expiresAt: opt(b.expiresAt) });
      res.setHeader('cache-control', 'no-store');
      send(
        res,
        s,
        req,
        'Management key created',
        html`<p role="status">Give this key to the customer now: it is shown this once, and only its hash is stored.</p>
<p><code id="new-key">${created.key}</code></p>
<p class="muted">${created.name ?? 'unnamed'} · ${created.prefix} · expires ${created.expiresAt ?? 'never'}</p>
<p><a href="/console/accounts/${id}">Back to the account</a></p>`,
        '/console/accounts',
      );
    },
    (req) => `/console/accounts/${param(req, 'id')}`,
  );

  post(
    '/console/accounts/:id/entries',
    BILLING,
    async (req, res, s) => {
      const id = param(req, 'id');
      const b = body(req);
      const common = { accountId: id, amount: b.amount, reference: b.reference };
      if (b.kind === 'topup' || b.kind === 'grant') await ops.createTopUp({ ...common, kind: b.kind }, s.actor);
      else if (b.kind === 'refund') await ops.refund({ ...common, reason: b.reason }, s.actor);
      else await ops.adjust({ ...common, reason: b.reason }, s.actor);
      back(res, `/console/accounts/${id}`, 'entry_recorded');
    },
    (req) => `/console/accounts/${param(req, 'id')}`,
  );
}
