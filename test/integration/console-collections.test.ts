import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminApp } from '../../src/admin/app';
import { systemClock } from '../../src/clock';
import { invoicePayments } from '../../src/invoicing/payments.service';
import { staffService } from '../../src/staff/staff.service';
import { silentLogger, testConfig, testDb } from '../helpers/env';
import { postpaidInvoiceFactory } from '../helpers/postpaidInvoice';
import { serve } from '../helpers/servers';

/**
 * The staff console's collections pages (issue 23; docs/console.md,
 * "Collections") over HTTP against the real admin server and PostgreSQL, as a
 * billing person's browser uses them: the receivables page against planted
 * invoices, a bank transfer recorded on the account page, and pausing dunning
 * with and without a reason.
 */
const config = testConfig();
const db = testDb(config);
const PASSWORD = 'correct horse battery staple';
let base: string;
let close: () => Promise<void>;
let postpaidInvoice: Awaited<ReturnType<typeof postpaidInvoiceFactory>>;
let billing: { id: string; email: string };
const today = () => new Date().toISOString().slice(0, 10);
const addDays = (d: string, n: number) => new Date(Date.parse(`${d}T00:00:00Z`) + n * 86_400_000).toISOString().slice(0, 10);

beforeAll(async () => {
  postpaidInvoice = await postpaidInvoiceFactory(db, config);
  const app = createAdminApp({ db, billing: config.billing, config, clock: systemClock, logger: silentLogger, readiness: {}, readyCheckTimeoutMs: 1000 });
  ({ url: base, close } = await serve(app));
  const email = `billie-${randomUUID().slice(0, 8)}@mixroute.example`;
  const u = await staffService({ db }).createUser({ email, name: 'Billie Billing', role: 'billing', password: PASSWORD });
  billing = { id: u.id, email };
});
afterAll(async () => {
  await close();
  await db.destroy();
});

/** A browser's cookie jar over fetch, redirects not followed. */
function browser() {
  const jar = new Map<string, string>();
  const request = async (method: 'GET' | 'POST', path: string, form?: Record<string, string>) => {
    const res = await fetch(base + path, {
      method,
      redirect: 'manual',
      headers: {
        ...(jar.size ? { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') } : {}),
        ...(form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
      },
      body: form ? new URLSearchParams(form).toString() : undefined,
    });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const [name, ...value] = pair!.split('=');
      jar.set(name!.trim(), value.join('='));
    }
    return { status: res.status, location: res.headers.get('location') ?? '', type: res.headers.get('content-type') ?? '', body: await res.text() };
  };
  return { get: (path: string) => request('GET', path), post: (path: string, form: Record<string, string>) => request('POST', path, form) };
}

const hidden = (html: string, name: string) => new RegExp(`name="${name}" value="([^"]*)"`).exec(html)?.[1] ?? '';

async function signedIn(email: string) {
  const b = browser();
  const form = await b.get('/console/login');
  const r = await b.post('/console/login', { _csrf: hidden(form.body, '_csrf'), next: '/console', email, password: PASSWORD });
  expect(r.status).toBe(303);
  expect(r.location).toBe('/console');
  return b;
}

/** The cells (tags stripped) of the table row that links to `href`. */
function rowLinking(html: string, href: string): string[] {
  const row = html.split('<tr>').find((r) => r.startsWith(`<td><a href="${href}"`));
  expect(row, `a row linking to ${href}`).toBeDefined();
  return row!
    .split('</tr>')[0]!
    .split('<td>')
    .slice(1)
    .map((c) => c.replace(/<[^>]+>/g, '').trim());
}

/** The flash message at the top of a page, if any. */
const flash = (html: string) => /<p class="flash (ok|error)"[^>]*>([^<]*)<\/p>/.exec(html)?.slice(1, 3) ?? null;

describe('receivables page', () => {
  it('shows the outstanding amounts of planted invoices per account and in the CSV, in the bucket of the as-of date', async () => {
    const full = await postpaidInvoice('Aging Full');
    const part = await postpaidInvoice('Aging Part');
    // 19.00 of the second invoice is paid: 100.00 stays outstanding.
    await invoicePayments({ db, clock: systemClock }).recordPayment(part.invoiceId, { amount: '19.00', paidOn: today(), reference: `AG-${randomUUID().slice(0, 8)}` }, 'cli:test');
    const b = await signedIn(billing.email);

    // Today both are current (not yet due).
    const now = await b.get('/console/receivables');
    expect(now.status).toBe(200);
    expect(now.body).toContain('href="/console/receivables"');
    // Columns: account, currency, invoices, current, 1-30, 31-60, 61-90, over 90, total.
    expect(rowLinking(now.body, `/console/accounts/${full.accountId}`).slice(1)).toEqual(['USD', '1', '119.00', '0.00', '0.00', '0.00', '0.00', '119.00']);
    expect(rowLinking(now.body, `/console/accounts/${part.accountId}`).slice(1)).toEqual(['USD', '1', '100.00', '0.00', '0.00', '0.00', '0.00', '100.00']);
    expect(rowLinking(now.body, `/console/accounts/${full.accountId}`)[0]).toMatch(/^Aging Full /);

    // 45 days after the due date: 31-60.
    const asOf = addDays(full.dueDate, 45);
    const later = await b.get(`/console/receivables?asOf=${asOf}`);
    expect(later.status).toBe(200);
    expect(later.body).toContain(`value="${asOf}"`);
    expect(rowLinking(later.body, `/console/accounts/${full.accountId}`).slice(1)).toEqual(['USD', '1', '0.00', '0.00', '119.00', '0.00', '0.00', '119.00']);
    // The total row counts every account's invoices: at least these two.
    const totalRow = later.body.split('<caption>Total receivables</caption>')[1]!.split('</table>')[0]!;
    const usd = totalRow.split('<tr>').find((r) => r.includes('<td>USD</td>'))!;
    const cells = usd.split('<td>').slice(1).map((c) => c.replace(/<[^>]+>/g, '').trim());
    expect(Number(cells[1])).toBeGreaterThanOrEqual(2);
    expect(Number(cells[7])).toBeGreaterThanOrEqual(219);

    // The CSV link on the page downloads the same report.
    expect(later.body).toContain(`href="/console/receivables.csv?asOf=${asOf}"`);
    const csv = await b.get(`/console/receivables.csv?asOf=${asOf}`);
    expect(csv.status).toBe(200);
    expect(csv.type).toContain('text/csv');
    const line = csv.body.split('\n').find((l) => l.startsWith(full.accountId))!;
    expect(line.split(',').slice(2)).toEqual(['USD', '1', '0.00', '0.00', '119.00', '0.00', '0.00', '119.00']);

    // A bad date is a message on the page, not a stack trace.
    const bad = await b.get('/console/receivables?asOf=2026-13-45');
    expect(bad.status).toBe(400);
    expect(bad.body).toContain('asOf must be a date YYYY-MM-DD');
    expect(bad.body).not.toMatch(/at .*\.ts:\d+/);
  });
});

describe('account page: collections', () => {
  it('shows the invoice, and recording a bank transfer changes its status: open, partially paid, paid', async () => {
    const inv = await postpaidInvoice('Console Transfer');
    const b = await signedIn(billing.email);
    const page = `/console/accounts/${inv.accountId}`;
    const before = await b.get(page);
    expect(before.status).toBe(200);
    expect(before.body).toContain('<h2 id="collections">Collections</h2>');
    // Invoice, payment status, amount due, amount paid, outstanding, due date.
    expect(rowLinking(before.body, `/console/invoices/${inv.invoiceId}`)).toEqual([inv.number, 'open', '119.00 USD', '0.00', '119.00', inv.dueDate]);
    // The dunning timeline with the default schedule: nothing done yet, the notice 3 days before the due date next.
    expect(before.body).toContain(`Next: <strong>notice-3d</strong> (notice) at ${addDays(inv.dueDate, -3)}T00:00:00.000Z`);
    expect(before.body).toContain('Dunning is running');
    expect(before.body).toContain('The account is not suspended.');

    const ref1 = `TR-${randomUUID().slice(0, 8)}`;
    const paid1 = await b.post(`${page}/invoices/${inv.invoiceId}/payments`, { _csrf: hidden(before.body, '_csrf'), amount: '19.00', paidOn: today(), reference: ref1 });
    expect(paid1.status).toBe(303);
    expect(paid1.location).toBe(`${page}?msg=payment_recorded`);
    const after1 = await b.get(paid1.location);
    expect(flash(after1.body)).toEqual(['ok', 'Bank transfer recorded against the invoice.']);
    expect(rowLinking(after1.body, `/console/invoices/${inv.invoiceId}`)).toEqual([inv.number, 'partially paid', '119.00 USD', '19.00', '100.00', inv.dueDate]);
    // The applied payment: source, reference, paid on, amount, credited to account, recorded by.
    const applied = after1.body.split(`<caption>Payments applied to ${inv.number}</caption>`)[1]!.split('</table>')[0]!;
    expect(applied).toContain(`<td>bank_transfer</td><td>${ref1}</td><td>${today()}</td><td>19.00</td><td>0.00</td><td>staff-user:${billing.id}</td>`);

    // The rest and 5.00 more: paid, the 5.00 credited to the account.
    const ref2 = `TR-${randomUUID().slice(0, 8)}`;
    const paid2 = await b.post(`${page}/invoices/${inv.invoiceId}/payments`, { _csrf: hidden(after1.body, '_csrf'), amount: '105.00', paidOn: today(), reference: ref2 });
    expect(paid2.status).toBe(303);
    const after2 = await b.get(page);
    expect(rowLinking(after2.body, `/console/invoices/${inv.invoiceId}`)).toEqual([inv.number, 'paid', '119.00 USD', '119.00', '0.00', inv.dueDate]);
    expect(after2.body).toContain(`<td>${ref2}</td><td>${today()}</td><td>100.00</td><td>5.00</td>`);
    // Paid: no more transfer or write-off form for it.
    expect(after2.body).not.toContain(`action="${page}/invoices/${inv.invoiceId}/payments"`);
    expect(after2.body).not.toContain(`action="${page}/invoices/${inv.invoiceId}/write-off"`);
    const rows = await db('invoice_payment_applications').where({ invoice_id: inv.invoiceId }).orderBy('created_at');
    expect(rows.map((r) => [r.reference, r.recorded_by])).toEqual([
      [ref1, `staff-user:${billing.id}`],
      [ref2, `staff-user:${billing.id}`],
    ]);
  });

  it('refuses a bad transfer with a message on the page, and writes nothing', async () => {
    const inv = await postpaidInvoice('Console Bad Transfer');
    const b = await signedIn(billing.email);
    const page = `/console/accounts/${inv.accountId}`;
    const csrf = hidden((await b.get(page)).body, '_csrf');
    const bad = await b.post(`${page}/invoices/${inv.invoiceId}/payments`, { _csrf: csrf, amount: '12,50', paidOn: today(), reference: 'TR-BAD-1' });
    expect(bad.status).toBe(400);
    expect(flash(bad.body)?.[0]).toBe('error');
    expect(flash(bad.body)?.[1]).toContain('amount must be a decimal string');
    expect(bad.body).toContain(`<a href="${page}">Back</a>`);
    const future = await b.post(`${page}/invoices/${inv.invoiceId}/payments`, { _csrf: csrf, amount: '10.00', paidOn: addDays(today(), 3), reference: 'TR-BAD-2' });
    expect(future.status).toBe(400);
    expect(flash(future.body)?.[1]).toContain('must not be in the future');
    expect(await db('invoice_payment_applications').where({ invoice_id: inv.invoiceId })).toHaveLength(0);
  });

  it('writes an invoice off with a reason', async () => {
    const inv = await postpaidInvoice('Console Write-off');
    const b = await signedIn(billing.email);
    const page = `/console/accounts/${inv.accountId}`;
    const csrf = hidden((await b.get(page)).body, '_csrf');
    const done = await b.post(`${page}/invoices/${inv.invoiceId}/write-off`, { _csrf: csrf, reason: 'customer insolvent, claim filed' });
    expect(done.status).toBe(303);
    expect(done.location).toBe(`${page}?msg=invoice_written_off`);
    const after = await b.get(page);
    expect(rowLinking(after.body, `/console/invoices/${inv.invoiceId}`)[1]).toBe('uncollectible');
    expect(after.body).toContain(`by staff-user:${billing.id}: “customer insolvent, claim filed”`);
    expect((await db('invoice_write_offs').where({ invoice_id: inv.invoiceId }).first()).written_off_by).toBe(`staff-user:${billing.id}`);
  });

  it('pausing dunning without a reason shows the error; with one, records the pause with the staff member; resuming ends it', async () => {
    const inv = await postpaidInvoice('Console Pause');
    const b = await signedIn(billing.email);
    const page = `/console/accounts/${inv.accountId}`;
    const csrf = hidden((await b.get(page)).body, '_csrf');

    const empty = await b.post(`${page}/dunning/pause`, { _csrf: csrf, reason: '   ' });
    expect(empty.status).toBe(400);
    expect(flash(empty.body)?.[0]).toBe('error');
    expect(flash(empty.body)?.[1]).toContain('reason must say why (at least 3 characters)');
    expect(empty.body).not.toMatch(/at .*\.ts:\d+/);
    expect(await db('dunning_pauses').where({ account_id: inv.accountId })).toHaveLength(0);

    const reason = 'customer disputes the October invoice, ticket 4411';
    const paused = await b.post(`${page}/dunning/pause`, { _csrf: csrf, reason });
    expect(paused.status).toBe(303);
    expect(paused.location).toBe(`${page}?msg=dunning_paused`);
    const rows = await db('dunning_pauses').where({ account_id: inv.accountId });
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ reason, paused_by: `staff-user:${billing.id}`, resumed_at: null });
    const shown = await b.get(paused.location);
    expect(flash(shown.body)?.[0]).toBe('ok');
    expect(shown.body).toContain(`<strong>Dunning is paused</strong> for this account since ${new Date(rows[0].paused_at).toISOString()} by staff-user:${billing.id}: “${reason}”`);
    expect(shown.body).toContain(`action="${page}/dunning/resume"`);
    expect(shown.body).not.toContain(`action="${page}/dunning/pause"`);

    // Pausing again changes nothing.
    const again = await b.post(`${page}/dunning/pause`, { _csrf: csrf, reason: 'second thoughts' });
    expect(again.location).toBe(`${page}?msg=dunning_already_paused`);
    expect(await db('dunning_pauses').where({ account_id: inv.accountId })).toHaveLength(1);

    const resumed = await b.post(`${page}/dunning/resume`, { _csrf: csrf });
    expect(resumed.status).toBe(303);
    expect(resumed.location).toBe(`${page}?msg=dunning_resumed`);
    const closed = await db('dunning_pauses').where({ account_id: inv.accountId }).first();
    expect(closed.resumed_by).toBe(`staff-user:${billing.id}`);
    expect((await b.get(page)).body).toContain('Dunning is running');
  });

  it('shows a suspension in force and reinstates the account with a reason', async () => {
    const inv = await postpaidInvoice('Console Reinstate');
    const [s] = await db('account_suspensions')
      .insert({ account_id: inv.accountId, invoice_id: inv.invoiceId, reason: 'invoice unpaid 14 days after its due date', suspended_by: `dunning:${inv.invoiceId}` })
      .returning('*');
    await db('accounts').where({ id: inv.accountId }).update({ status: 'suspended' });
    const b = await signedIn(billing.email);
    const page = `/console/accounts/${inv.accountId}`;
    const shown = await b.get(page);
    expect(shown.body).toContain(
      `<span class="badge bad">suspended</span> since ${new Date(s.suspended_at).toISOString()} by dunning:${inv.invoiceId} for invoice <a href="/console/invoices/${inv.invoiceId}">${inv.number}</a>: “invoice unpaid 14 days after its due date”`,
    );
    const csrf = hidden(shown.body, '_csrf');
    const empty = await b.post(`${page}/reinstate`, { _csrf: csrf, reason: '' });
    expect(empty.status).toBe(400);
    expect(flash(empty.body)?.[1]).toContain('reason must say why');
    const done = await b.post(`${page}/reinstate`, { _csrf: csrf, reason: 'payment promised by the CFO in writing' });
    expect(done.location).toBe(`${page}?msg=account_reinstated`);
    const row = await db('account_suspensions').where({ id: s.id }).first();
    expect(row).toMatchObject({ reinstated_by: `staff-user:${billing.id}`, reinstate_reason: 'payment promised by the CFO in writing' });
    expect((await db('accounts').where({ id: inv.accountId }).first()).status).toBe('active');
    expect((await b.get(page)).body).toContain('The account is not suspended.');
  });
});
