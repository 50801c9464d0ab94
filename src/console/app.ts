import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Client } from '@temporalio/client';
import express, { Router, type Request, type Response } from 'express';
import helmet from 'helmet';
import type { AdminOperations } from '../admin/routes';
import type { Db } from '../db/knex';
import type { StaffRole } from '../staff/staff.data';
import { AppError } from '../errors';
import { RateLimiter } from '../gateway/rateLimit';
import type { Logger } from '../logger';
import { invoiceRunStatusQuery, type InvoiceRunState } from '../../workflows/messages';
import { csrfField, html, page, raw, table, type Html, type NavItem } from './html';
import { correctionApproval } from './dsrCorrection';
import { clientAddressOf } from '../http/clientAddress';
import { flashFrom, message, withMessage, type MessageCode } from './messages';
import {
  checkCredentials,
  clearSignInAttempts,
  cookieHeader,
  createSession,
  csrfOk,
  hashPassword,
  loadSession,
  revokeSession,
  SESSION_HOURS,
  SIGN_IN_FORM_S,
  signInCookieHeader,
  signInIdentity,
  signInToken,
  signInTokenOk,
  takeSignInAttempt,
  type ConsoleSession,
} from './session';
import { disableStaffUser, setStaffUserRole } from './staffUsers';

/**
 * The staff console at /console: server-rendered pages over the same
 * services as the admin API (no business logic here), htmx for live
 * progress, Chart.js for the usage chart, both served from node_modules as
 * static assets. Each page admits the roles its API routes admit.
 */
const BILLING: readonly StaffRole[] = ['billing', 'admin'];
const COMPLIANCE: readonly StaffRole[] = ['compliance', 'admin'];
const ADMIN: readonly StaffRole[] = ['admin'];

const NAV: (NavItem & { roles: readonly StaffRole[] })[] = [
  { href: '/console/accounts', label: 'Accounts', roles: BILLING },
  { href: '/console/invoice-runs', label: 'Invoice runs', roles: BILLING },
  { href: '/console/invoices', label: 'Invoices', roles: BILLING },
  { href: '/console/reconciliation', label: 'Reconciliation', roles: BILLING },
  { href: '/console/dsr', label: 'Rights requests', roles: COMPLIANCE },
  { href: '/console/retention', label: 'Retention & holds', roles: COMPLIANCE },
  { href: '/console/staff', label: 'Staff', roles: ADMIN },
  { href: '/console/policies', label: 'Retention policies', roles: ADMIN },
];

const require = createRequire(import.meta.url);
const ASSETS = fileURLToPath(new URL('./assets/', import.meta.url));
const HTMX = require.resolve('htmx.org/dist/htmx.min.js');
const CHART = path.join(path.dirname(require.resolve('chart.js')), 'chart.umd.js');

export interface ConsoleDeps {
  db: Db;
  ops: AdminOperations;
  temporal?: { client: Client; taskQueue: string };
  logger: Logger;
  /** Sign-in attempts per client address and minute (default 10). */
  loginRpm?: number;
  /** Sign-in attempts per account (email or staff token) and window (default 5 per 15 minutes), across addresses and instances. */
  accountAttempts?: number;
  accountWindowS?: number;
  /** TRUSTED_PROXIES: whose X-Forwarded-For names the client address. */
  trustedProxies?: readonly string[];
}

type Handler = (req: Request, res: Response, s: ConsoleSession) => Promise<void>;

export function consoleRouter(deps: ConsoleDeps): Router {
  const { db, ops } = deps;
  const router = Router();
  const loginLimiter = new RateLimiter();
  const clientAddress = clientAddressOf(deps.trustedProxies ?? []);

  router.use(
    '/console',
    helmet({
      contentSecurityPolicy: {
        useDefaults: false,
        directives: {
          defaultSrc: ["'self'"],
          scriptSrc: ["'self'"],
          styleSrc: ["'self'"],
          imgSrc: ["'self'", 'data:'],
          connectSrc: ["'self'"],
          formAction: ["'self'"],
          frameAncestors: ["'none'"],
          baseUri: ["'none'"],
          objectSrc: ["'none'"],
        },
      },
      strictTransportSecurity: false, // set by the TLS terminator in production
    }),
  );
  router.get('/console/assets/htmx.min.js', (_req, res) => res.sendFile(HTMX));
  router.get('/console/assets/chart.umd.js', (_req, res) => res.sendFile(CHART));
  router.use('/console/assets', express.static(ASSETS, { fallthrough: false, maxAge: '1h' }));
  router.use('/console', express.urlencoded({ extended: false, limit: '64kb' }), loadSession(db));

  const nav = (role: StaffRole) => NAV.filter((n) => n.roles.includes(role));
  const flash = flashFrom;
  const send = (res: Response, s: ConsoleSession, req: Request, title: string, body: Html, current?: string) =>
    res.type('html').send(page({ title, role: s.role, actor: s.name, csrf: s.csrf, nav: nav(s.role), current, flash: flash(req) }, body).value);
  const back = (res: Response, to: string, code: MessageCode) => res.redirect(303, withMessage(to, code));
  const errorText = (err: unknown) => (err instanceof AppError ? err.message : 'Something went wrong; the details are in the server log.');

  const get = (p: string, roles: readonly StaffRole[], h: Handler) =>
    router.get(p, async (req, res) => {
      const s = res.locals.session as ConsoleSession | undefined;
      if (!s) return res.redirect(303, `/console/login?next=${encodeURIComponent(req.originalUrl)}`);
      if (!roles.includes(s.role)) {
        res.status(403).type('html').send(page({ title: 'Not allowed', role: s.role, actor: s.name, csrf: s.csrf, nav: nav(s.role) }, html`<p>This page is for ${roles.join(' or ')} staff. You are signed in as ${s.role}.</p>`).value);
        return;
      }
      try {
        await h(req, res, s);
      } catch (err) {
        if (!(err instanceof AppError)) deps.logger.error({ errType: (err as Error)?.name, path: req.path }, 'console page failed');
        res.status(err instanceof AppError ? err.status : 500).type('html').send(page({ title: 'Error', role: s.role, actor: s.name, csrf: s.csrf, nav: nav(s.role) }, html`<p role="alert">${errorText(err)}</p>`).value);
      }
    });
  /** POST: session, role and CSRF token checked; the handler redirects (post/redirect/get). */
  const post = (p: string, roles: readonly StaffRole[], h: Handler, backTo: (req: Request) => string) =>
    router.post(p, async (req, res) => {
      const s = res.locals.session as ConsoleSession | undefined;
      if (!s) return res.redirect(303, '/console/login');
      if (!roles.includes(s.role)) return res.status(403).type('text').send('forbidden');
      if (!csrfOk(s, req.body?._csrf ?? req.get('x-csrf-token'))) return res.status(403).type('text').send('invalid or missing CSRF token: reload the page');
      try {
        await h(req, res, s);
      } catch (err) {
        if (!(err instanceof AppError)) deps.logger.error({ errType: (err as Error)?.name, path: req.path }, 'console action failed');
        // The error is shown on this response, not put in a redirect's query string (see messages.ts).
        res
          .status(err instanceof AppError ? err.status : 500)
          .type('html')
          .send(page({ title: 'Not done', role: s.role, actor: s.name, csrf: s.csrf, nav: nav(s.role), flash: { kind: 'error', text: errorText(err) } }, html`<p><a href="${backTo(req)}">Back</a></p>`).value);
      }
    });
  const param = (req: Request, name: string) => String(req.params[name]);
  const body = (req: Request) => (req.body ?? {}) as Record<string, string>;
  const opt = (v: string | undefined) => (v === undefined || v.trim() === '' ? undefined : v.trim());

  // --- sign in / out --------------------------------------------------------------

  const nextOf = (v: unknown) => (typeof v === 'string' && v.startsWith('/console') ? v : '/console');
  const signInPage = (req: Request, res: Response, status: number, msg: ReturnType<typeof flash>, next: string) => {
    const token = signInToken(req.headers.cookie);
    res.setHeader('set-cookie', signInCookieHeader(token, SIGN_IN_FORM_S));
    res.setHeader('cache-control', 'no-store');
    res.status(status).type('html').send(
      page(
        { title: 'Sign in', role: null, nav: [], flash: msg },
        html`<form method="post" action="/console/login">
  <input type="hidden" name="_csrf" value="${token}">
  <input type="hidden" name="next" value="${next}">
  <fieldset><legend>Staff sign-in</legend>
  <label for="email">Email</label><input id="email" name="email" type="email" autocomplete="username">
  <label for="password">Password (or a staff token, with the email left empty)</label><input id="password" name="password" type="password" autocomplete="current-password" required>
  <div><button type="submit">Sign in</button></div></fieldset>
</form>
<p class="muted">Before you sign in, one cookie protects this form against other sites; after, only a session cookie is set. No analytics, no tracking.</p>`,
      ).value,
    );
  };

  router.get('/console/login', (req, res) => {
    if (res.locals.session) return res.redirect(303, '/console');
    signInPage(req, res, 200, flash(req), nextOf(req.query.next));
  });

  router.post('/console/login', async (req, res) => {
    const b = body(req);
    const next = nextOf(b.next);
    if (!signInTokenOk(req.headers.cookie, b._csrf)) return signInPage(req, res, 403, message('signin_form_expired'), next);
    const ip = clientAddress(req);
    const ua = req.get('user-agent')?.slice(0, 512) ?? null;
    const taken = loginLimiter.take(`login:${ip}`, deps.loginRpm ?? 10);
    if (!taken.allowed) {
      res.setHeader('retry-after', String(taken.retryAfterSeconds));
      return signInPage(req, res, 429, message('signin_throttled'), next);
    }
    const email = (b.email ?? '').trim();
    const secret = b.password ?? '';
    // Per account as well as per address: many addresses guessing one staff member's password are throttled together.
    const identity = signInIdentity(email, secret);
    const account = await takeSignInAttempt(db, identity, deps.accountAttempts ?? 5, deps.accountWindowS ?? 900);
    if (!account.allowed) {
      res.setHeader('retry-after', String(account.retryAfterSeconds));
      return signInPage(req, res, 429, message('signin_throttled'), next);
    }
    const result = await checkCredentials(db, email, secret);
    if (!result.ok) {
      await db('security_events').insert({ kind: 'console_login_failed', reason: email ? 'bad_password_or_unknown_email' : 'bad_token', source_ip: ip, user_agent: ua, source: 'admin' });
      return back(res, '/console/login', 'signin_failed');
    }
    await clearSignInAttempts(db, identity);
    const id = await createSession(db, result);
    await db('login_records').insert({ staff_user_id: result.staffUserId, staff_token_id: result.staffTokenId, source_ip: ip, user_agent: ua, success: true });
    res.setHeader('set-cookie', [cookieHeader(id, SESSION_HOURS * 3600), signInCookieHeader('', 0)]);
    res.redirect(303, next);
  });

  router.post('/console/logout', async (req, res) => {
    const s = res.locals.session as ConsoleSession | undefined;
    if (s && csrfOk(s, body(req)._csrf)) await revokeSession(db, res.locals.sessionId as string);
    res.setHeader('set-cookie', cookieHeader('', 0));
    back(res, '/console/login', 'signed_out');
  });

  get('/console', ['billing', 'compliance', 'admin'], async (_req, res, s) => {
    res.redirect(303, s.role === 'compliance' ? '/console/dsr' : '/console/accounts');
  });

  // --- billing: accounts -------------------------------------------------------------

  get('/console/accounts', BILLING, async (req, res, s) => {
    const q = typeof req.query.q === 'string' ? req.query.q.trim() : '';
    const query = db('accounts').orderBy('name').limit(50).select('id', 'name', 'country', 'vat_id', 'plan', 'status');
    if (q) {
      query.where((w) => {
        if (/^[0-9a-f-]{36}$/i.test(q)) w.orWhere('id', q);
        w.orWhereILike('name', `%${q}%`).orWhereILike('vat_id', `%${q}%`);
      });
    }
    const rows = await query;
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
    const holds = await db('balance_holds').where({ account_id: id, status: 'open' }).orderBy('created_at', 'desc').limit(20);
    const payments = await db('payments').where({ account_id: id }).orderBy('received_at', 'desc').limit(20);
    const usage = await db('usage_hourly')
      .where({ account_id: id })
      .where('hour', '>=', new Date(Date.now() - 30 * 86_400_000))
      .groupByRaw(`1, 2`)
      .orderByRaw('1')
      .select(db.raw(`to_char(hour AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day`), 'model', db.raw('sum(input_tokens + cache_read_tokens + cache_write_tokens + output_tokens)::bigint AS tokens'), db.raw('sum(cost)::text AS cost'));
    const days = [...new Set(usage.map((u) => u.day as string))];
    const models = [...new Set(usage.map((u) => u.model as string))];
    const chart = { labels: days, datasets: models.map((m) => ({ label: m || '(none)', data: days.map((d) => Number(usage.find((u) => u.day === d && u.model === m)?.tokens ?? 0)) })) };
    const a = account as Record<string, unknown>;
    send(
      res,
      s,
      req,
      `Account: ${String(a.name)}`,
      html`<div class="grid">
  <section aria-labelledby="bal"><h2 id="bal">Balance</h2><p class="figure">${bal.balanceRounded} ${bal.currency}</p>
    <p>Held for requests in flight: ${bal.held} · spendable: ${bal.spendable} · unsettled usage: ${bal.pendingUsage.events} requests, ${bal.pendingUsage.cost}</p>
    <p class="muted">${a.plan} · ${a.country ?? 'no country'} · VAT id ${a.vat_id ?? '—'} · id ${id}</p></section>
  <section aria-labelledby="usage"><h2 id="usage">Usage, last 30 days</h2>
    <canvas id="usage-chart" role="img" aria-label="Tokens per day and model" data-chart="${JSON.stringify(chart)}"></canvas>
    ${table(['Day', 'Model', 'Tokens', 'Cost'], usage.map((u) => [html`${u.day}`, html`${u.model || '(none)'}`, html`${String(u.tokens)}`, html`${u.cost}`]), 'Usage by day and model')}</section>
</div>
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
${table(['Hold', 'Amount', 'Settled', 'Expires'], holds.map((h) => [html`${h.id}`, html`${h.amount}`, html`${h.settled}`, html`${new Date(h.expires_at).toISOString()}`]), 'Open balance holds')}
${table(['Provider', 'Payment', 'Amount', 'Status', 'Received'], payments.map((p) => [html`${p.provider}`, html`${p.provider_payment_id}`, html`${p.amount} ${p.currency}`, html`${p.status}`, html`${new Date(p.received_at).toISOString()}`]), 'Payments')}`,
      '/console/accounts',
    );
  });

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

  // --- billing: invoice runs and invoices ------------------------------------------------

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
    if (!deps.temporal) return null;
    const h = deps.temporal.client.workflow.getHandle(workflowId);
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
  ['Number', 'Kind', 'Status', 'Account', 'Period', 'Total', 'Due', 'PDF'],
  list.map((i) => [
    html`<a href="/console/invoices/${i.id}">${i.number ?? '(draft)'}</a>`,
    html`${i.kind}`,
    html`${i.status}`,
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

  // --- billing: reconciliation -------------------------------------------------------

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

  // --- compliance: rights requests ---------------------------------------------------

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
</tbody></table>`,
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

  // --- compliance: retention and legal holds ---------------------------------------------

  get('/console/retention', COMPLIANCE, async (req, res, s) => {
    const runs = await ops.retention.listRuns({ limit: 10 });
    const holds = await ops.retention.holds({});
    send(
      res,
      s,
      req,
      'Retention runs and legal holds',
      html`<form method="post" action="/console/retention/run">${csrfField(s.csrf)}<button type="submit">Run expiry now</button></form>
${runs.map((r) =>
  table(
    ['Category', 'Cutoff', 'Expired rows', 'Day partitions', 'Kept: hold', 'Kept: unbilled', 'Note'],
    r.categories.map((c) => [html`${c.category}`, html`${c.cutoff.slice(0, 10)}`, html`${String(c.expiredRows)}`, html`${String(c.expiredPartitions)}`, html`${String(c.keptHold)}`, html`${String(c.keptUnbilled)}`, html`${c.note ?? ''}`]),
    `Run ${r.id.slice(0, 8)} (${r.status}, ${r.startedAt}, by ${r.requestedBy})`,
  ),
)}
<form method="post" action="/console/legal-holds">${csrfField(s.csrf)}<fieldset><legend>Place a legal hold</legend>
<label for="account">Account id</label><input id="account" name="accountId" required>
<label for="hreason">Reason</label><input id="hreason" name="reason" required minlength="5"><div><button type="submit">Place hold</button></div></fieldset></form>
${table(
  ['Account', 'Reason', 'Placed', 'Released', 'Release'],
  holds.map((h) => [
    html`${h.accountId}`,
    html`${h.reason}`,
    html`${h.createdAt} by ${h.createdBy}`,
    html`${h.releasedAt ? `${h.releasedAt} by ${h.releasedBy}: ${h.releaseReason}` : 'in force'}`,
    h.releasedAt
      ? html``
      : html`<form method="post" action="/console/legal-holds/${h.id}/release" class="inline">${csrfField(s.csrf)}<label for="r-${h.id}">Reason</label><input id="r-${h.id}" name="reason" required minlength="5"> <button type="submit" class="secondary">Release</button></form>`,
  ]),
  'Legal holds',
)}`,
      '/console/retention',
    );
  });
  post(
    '/console/retention/run',
    COMPLIANCE,
    async (_req, res, s) => {
      await ops.retention.run(s.actor);
      back(res, '/console/retention', 'expiry_started');
    },
    () => '/console/retention',
  );
  post(
    '/console/legal-holds',
    COMPLIANCE,
    async (req, res, s) => {
      await ops.retention.addHold({ accountId: body(req).accountId, reason: body(req).reason }, s.actor);
      back(res, '/console/retention', 'hold_placed');
    },
    () => '/console/retention',
  );
  post(
    '/console/legal-holds/:id/release',
    COMPLIANCE,
    async (req, res, s) => {
      await ops.retention.releaseHold(param(req, 'id'), { reason: body(req).reason }, s.actor);
      back(res, '/console/retention', 'hold_released');
    },
    () => '/console/retention',
  );

  // --- admin: staff and policies ------------------------------------------------------

  get('/console/staff', ADMIN, async (req, res, s) => {
    const users = await db('staff_users').orderBy('email');
    const tokens = await db('staff_tokens').orderBy('created_at', 'desc').limit(50);
    send(
      res,
      s,
      req,
      'Staff',
      html`<form method="post" action="/console/staff">${csrfField(s.csrf)}<fieldset><legend>Add a staff member</legend>
<label for="semail">Email</label><input id="semail" name="email" type="email" required>
<label for="sname">Name</label><input id="sname" name="name" required>
<label for="srole">Role</label><select id="srole" name="role"><option value="billing">billing</option><option value="compliance">compliance</option><option value="admin">admin</option></select>
<label for="spass">Initial password (at least 12 characters)</label><input id="spass" name="password" type="password" required minlength="12" autocomplete="new-password">
<div><button type="submit">Add</button></div></fieldset></form>
${table(
  ['Email', 'Name', 'Role', 'Since', 'Status', 'Change access'],
  users.map((u) => [
    html`${u.email}`,
    html`${u.name}`,
    html`${u.role}`,
    html`${new Date(u.created_at).toISOString().slice(0, 10)}`,
    html`${u.disabled_at ? 'disabled' : 'active'}`,
    u.disabled_at || s.actor === `staff-user:${u.id}`
      ? html``
      : html`<form method="post" action="/console/staff/${u.id}/role" class="inline">${csrfField(s.csrf)}<label for="role-${u.id}">New role for ${u.email}</label> <select id="role-${u.id}" name="role">${['billing', 'compliance', 'admin'].map((r) => html`<option value="${r}"${r === u.role ? raw(' selected') : ''}>${r}</option>`)}</select> <button type="submit" class="secondary">Change role</button></form>
<form method="post" action="/console/staff/${u.id}/disable" class="inline">${csrfField(s.csrf)}<button type="submit" class="secondary" aria-label="Disable ${u.email}">Disable</button></form>`,
  ]),
  'Staff members',
)}
${table(['Token', 'Role', 'Name', 'Created', 'Revoked'], tokens.map((t) => [html`${t.id.slice(0, 8)}`, html`${t.role}`, html`${t.name ?? ''}`, html`${new Date(t.created_at).toISOString()}`, html`${t.revoked_at ? new Date(t.revoked_at).toISOString() : ''}`]), 'API staff tokens (create and revoke with the CLI or admin API)')}`,
      '/console/staff',
    );
  });
  post(
    '/console/staff',
    ADMIN,
    async (req, res) => {
      const b = body(req);
      await createStaffUser(db, { email: b.email ?? '', name: b.name ?? '', role: b.role as StaffRole, password: b.password ?? '' });
      back(res, '/console/staff', 'staff_added');
    },
    () => '/console/staff',
  );
  post(
    '/console/staff/:id/role',
    ADMIN,
    async (req, res, s) => {
      await setStaffUserRole(db, param(req, 'id'), body(req).role ?? '', s.actor);
      back(res, '/console/staff', 'staff_role_changed');
    },
    () => '/console/staff',
  );
  post(
    '/console/staff/:id/disable',
    ADMIN,
    async (req, res, s) => {
      await disableStaffUser(db, param(req, 'id'), s.actor);
      back(res, '/console/staff', 'staff_disabled');
    },
    () => '/console/staff',
  );
  get('/console/policies', ADMIN, async (req, res, s) => {
    const policies = await ops.retention.policies();
    send(
      res,
      s,
      req,
      'Retention policies',
      html`${table(['Category', 'Period', 'Unit', 'Action', 'Legal basis'], policies.map((p) => [html`${p.category}`, html`${String(p.period)}`, html`${p.unit}`, html`${p.action}`, html`${p.legalBasis}`]), 'Policies')}
<form method="post" action="/console/policies">${csrfField(s.csrf)}<fieldset><legend>Change a period</legend>
<label for="pcat">Category</label><select id="pcat" name="category">${policies.map((p) => html`<option value="${p.category}">${p.category}</option>`)}</select>
<label for="pper">Period</label><input id="pper" name="period" required inputmode="numeric">
<label for="preason">Reason</label><input id="preason" name="reason" required minlength="5"><div><button type="submit">Change</button></div></fieldset></form>`,
      '/console/policies',
    );
  });
  post(
    '/console/policies',
    ADMIN,
    async (req, res, s) => {
      const b = body(req);
      await ops.retention.setPolicy({ category: b.category, period: b.period, reason: b.reason }, s.actor);
      back(res, '/console/policies', 'policy_changed');
    },
    () => '/console/policies',
  );

  return router;
}

export async function createStaffUser(db: Db, input: { email: string; name: string; role: StaffRole; password: string }) {
  const { ValidationError, ConflictError } = await import('../errors');
  if (!/^[^@\s]+@[^@\s]+$/.test(input.email)) throw new ValidationError('email must be an email address');
  if (!input.name.trim()) throw new ValidationError('name is required');
  if (!['billing', 'compliance', 'admin'].includes(input.role)) throw new ValidationError('role must be billing, compliance or admin');
  if (input.password.length < 12) throw new ValidationError('the password must have at least 12 characters');
  const existing = await db('staff_users').whereRaw('lower(email) = lower(?)', [input.email]).first('id');
  if (existing) throw new ConflictError(`${input.email} is already a staff member`);
  const [u] = await db('staff_users').insert({ email: input.email, name: input.name.trim(), role: input.role, password_hash: await hashPassword(input.password) }).returning(['id', 'email', 'role']);
  return u as { id: string; email: string; role: StaffRole };
}
