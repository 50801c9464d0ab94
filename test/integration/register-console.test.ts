import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accountsService } from '../../src/accounts/accounts.service';
import { createAdminApp } from '../../src/admin/app';
import { systemClock } from '../../src/clock';
import { subprocessorService } from '../../src/register/subprocessor.service';
import { staffService } from '../../src/staff/staff.service';
import { silentLogger, testConfig, testDb } from '../helpers/env';
import { serve } from '../helpers/servers';

/**
 * The console's Register page forms (issue 25; docs/processing-register.md,
 * "Maintaining it") over HTTP against the real admin server and PostgreSQL, as
 * a compliance person's browser uses them: an activity and recipients added
 * and changed, each change in the log with the staff member and the reason; a
 * bad value shown as a message with nothing saved; an account's decision on a
 * sub-processor notice; and billing staff refused.
 */
const config = testConfig();
const db = testDb(config);
const PASSWORD = 'correct horse battery staple';
const tag = randomUUID().slice(0, 8);
let base: string;
let close: () => Promise<void>;
const staff = {} as Record<'billing' | 'compliance', { id: string; email: string }>;
let providerId: string;

beforeAll(async () => {
  const app = createAdminApp({ db, billing: config.billing, config, clock: systemClock, logger: silentLogger, readiness: {}, readyCheckTimeoutMs: 1000 });
  ({ url: base, close } = await serve(app));
  for (const role of ['billing', 'compliance'] as const) {
    const email = `${role}-${tag}@mixroute.example`;
    const u = await staffService({ db }).createUser({ email, name: `Staff ${role}`, role, password: PASSWORD });
    staff[role] = { id: u.id, email };
  }
  providerId = (await accountsService({ db, clock: systemClock, config }).addProvider({ name: `regc-prov-${tag}`, baseUrl: 'https://api.example.com', kind: 'openai' })).id;
});
afterAll(async () => {
  await close?.();
  await db.destroy();
});

/** A browser's cookie jar over fetch, redirects not followed. */
function browser() {
  const jar = new Map<string, string>();
  const request = async (method: 'GET' | 'POST', path: string, form?: [string, string][]) => {
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
    return { status: res.status, location: res.headers.get('location') ?? '', body: await res.text() };
  };
  return {
    get: (path: string) => request('GET', path),
    /** Fields as an object, or as pairs when a name repeats (ticked checkboxes). */
    post: (path: string, form: Record<string, string> | [string, string][]) => request('POST', path, Array.isArray(form) ? form : Object.entries(form)),
  };
}

const hidden = (html: string, name: string) => new RegExp(`name="${name}" value="([^"]*)"`).exec(html)?.[1] ?? '';
/** The flash message at the top of a page, if any. */
const flash = (html: string) => /<p class="flash (ok|error)"[^>]*>([^<]*)<\/p>/.exec(html)?.slice(1, 3) ?? null;
/** The rows (cells, tags stripped) of the table captioned `caption`. */
function rows(html: string, caption: string): string[][] {
  const section = html.split(`<caption>${caption}</caption>`)[1]?.split('</table>')[0] ?? '';
  return section
    .split('<tr>')
    .slice(1)
    .map((r) =>
      r
        .split('</tr>')[0]!
        .split('<td>')
        .slice(1)
        .map((c) => c.replace(/<[^>]+>/g, '').trim()),
    );
}
/** The first row of the table whose first cell is `first`. */
const row = (html: string, caption: string, first: string) => rows(html, caption).find((r) => r[0] === first);

async function signedIn(role: 'billing' | 'compliance') {
  const b = browser();
  const form = await b.get('/console/login');
  const r = await b.post('/console/login', { _csrf: hidden(form.body, '_csrf'), next: '/console', email: staff[role].email, password: PASSWORD });
  expect(r.status).toBe(303);
  return b;
}

/** Posts a form and follows the redirect back to the page. */
async function submit(b: ReturnType<typeof browser>, path: string, form: [string, string][]) {
  const r = await b.post(path, form);
  expect(r.status, r.body).toBe(303);
  return { location: r.location, page: await b.get(r.location) };
}

const changesOf = (entityId: string) => db('register_changes').where({ entity_id: entityId }).orderBy('id');

describe('Register page forms', () => {
  it('adds a processing activity and changes it; each change shows with who and why', async () => {
    const b = await signedIn('compliance');
    const page = await b.get('/console/register');
    expect(page.status).toBe(200);
    expect(page.body).toContain('<legend>Add a processing activity</legend>');
    // The retention categories are the policies' own.
    expect(page.body).toContain('<option value="usage_events">usage_events</option>');
    const csrf = hidden(page.body, '_csrf');
    const key = `console_${tag}`;

    const added = await submit(b, '/console/register/activities', [
      ['_csrf', csrf],
      ['key', key],
      ['purpose', 'Billing customers for API usage'],
      ['legalBasis', 'contract'],
      ['dataSubjectCategories', 'customer staff, billing contacts'],
      ['dataCategories', 'usage metadata,  invoices '],
      ['systems', 'gateway, billing'],
      ['retentionCategory', 'usage_events'],
      ['recipientKinds', 'payment_processor'],
      ['recipientKinds', 'hosting'],
      ['reason', `console add ${tag}`],
    ]);
    expect(added.location).toBe('/console/register?msg=register_activity_added');
    expect(flash(added.page.body)).toEqual(['ok', 'Processing activity added; the change is in the log below.']);
    expect(row(added.page.body, 'Processing activities', key)).toEqual([key, 'Billing customers for API usage', 'contract', 'customer staff, billing contacts', 'usage metadata, invoices', 'gateway, billing', 'usage_events']);
    const stored = await db('processing_activities').where({ key }).first();
    expect(stored).toMatchObject({ legal_basis: 'contract', recipient_kinds: ['payment_processor', 'hosting'], retention_category: 'usage_events' });
    // The change log on the page: who (the signed-in staff member) and why.
    const actor = `staff-user:${staff.compliance.id}`;
    expect(rows(added.page.body, 'Latest changes').find((r) => r[3] === `console add ${tag}`)).toEqual([expect.any(String), actor, `created processing_activity ${stored.id}`, `console add ${tag}`]);

    // A change names only what it changes; the rest stays.
    const changed = await submit(b, '/console/register/activities/change', [
      ['_csrf', csrf],
      ['id', stored.id],
      ['purpose', ''],
      ['legalBasis', 'legitimate_interests'],
      ['dataSubjectCategories', ''],
      ['dataCategories', ''],
      ['systems', 'gateway'],
      ['retentionCategory', '-'],
      ['reason', `console change ${tag}`],
    ]);
    expect(flash(changed.page.body)).toEqual(['ok', 'Processing activity changed; the change is in the log below.']);
    expect(row(changed.page.body, 'Processing activities', key)).toEqual([key, 'Billing customers for API usage', 'legitimate_interests', 'customer staff, billing contacts', 'usage metadata, invoices', 'gateway', '']);
    expect((await db('processing_activities').where({ key }).first()).recipient_kinds).toEqual(['payment_processor', 'hosting']);
    const log = await changesOf(stored.id);
    expect(log.map((c) => [c.action, c.actor, c.reason])).toEqual([
      ['created', actor, `console add ${tag}`],
      ['updated', actor, `console change ${tag}`],
    ]);
    expect(log[1].before).toMatchObject({ legalBasis: 'contract', retentionCategory: 'usage_events' });
    expect(log[1].after).toMatchObject({ legalBasis: 'legitimate_interests', retentionCategory: null, systems: ['gateway'] });
    expect(changed.page.body).toContain(`<td>console change ${tag}</td>`);
  });

  it('adds recipients (a named one and a model provider) and changes one; "-" clears a fact', async () => {
    const b = await signedIn('compliance');
    const page = await b.get('/console/register');
    const csrf = hidden(page.body, '_csrf');
    // The provider without an entry is offered in the form.
    expect(page.body).toContain(`<option value="${providerId}">regc-prov-${tag}</option>`);
    const name = `Mailer ${tag}`;

    const added = await submit(b, '/console/register/recipients', [
      ['_csrf', csrf],
      ['kind', 'email_service'],
      ['provider', ''],
      ['name', name],
      ['role', 'processor'],
      ['countries', 'DE, US'],
      ['transferMechanism', 'standard_contractual_clauses'],
      ['sccDate', '2021-06-04'],
      ['transferNote', 'module 2'],
      ['agreementRef', `AVV-${tag}`],
      ['agreementSignedOn', '2026-01-10'],
      ['reason', `email provider ${tag}`],
    ]);
    expect(flash(added.page.body)).toEqual(['ok', 'Recipient added; the change is in the log below.']);
    expect(row(added.page.body, 'Recipients', name)).toEqual([name, 'email_service', 'processor', 'DE, US', 'standard_contractual_clauses (2021-06-04)', `AVV-${tag} (signed 2026-01-10)`, 'complete']);
    const r = await db('recipients').where({ name }).first();
    expect(r).toMatchObject({ transfer_note: 'module 2', countries: ['DE', 'US'] });

    const changed = await submit(b, '/console/register/recipients/change', [
      ['_csrf', csrf],
      ['id', r.id],
      ['name', ''],
      ['role', ''],
      ['countries', ''],
      ['transferMechanism', ''],
      ['sccDate', ''],
      ['transferNote', '-'],
      ['agreementRef', `AVV-${tag}-2`],
      ['agreementSignedOn', ''],
      ['reason', `renewed DPA ${tag}`],
    ]);
    expect(flash(changed.page.body)).toEqual(['ok', 'Recipient changed; the change is in the log below.']);
    expect(row(changed.page.body, 'Recipients', name)).toEqual([name, 'email_service', 'processor', 'DE, US', 'standard_contractual_clauses (2021-06-04)', `AVV-${tag}-2 (signed 2026-01-10)`, 'complete']);
    expect((await db('recipients').where({ id: r.id }).first()).transfer_note).toBeNull();
    expect((await changesOf(r.id)).map((c) => [c.action, c.actor, c.reason])).toEqual([
      ['created', `staff-user:${staff.compliance.id}`, `email provider ${tag}`],
      ['updated', `staff-user:${staff.compliance.id}`, `renewed DPA ${tag}`],
    ]);

    // A model provider's entry is named after the provider chosen; it announces a sub-processor.
    const provider = await submit(b, '/console/register/recipients', [
      ['_csrf', csrf],
      ['kind', 'model_provider'],
      ['provider', providerId],
      ['name', ''],
      ['role', 'sub_processor'],
      ['countries', 'US'],
      ['transferMechanism', 'adequacy_decision'],
      ['reason', `new model provider ${tag}`],
    ]);
    expect(flash(provider.page.body)?.[1]).toContain('This is a sub-processor change');
    expect(row(provider.page.body, 'Recipients', `regc-prov-${tag}`)?.slice(0, 4)).toEqual([`regc-prov-${tag}`, 'model_provider', 'sub_processor', 'US']);
    expect(row(provider.page.body, 'Model providers', `regc-prov-${tag}`)).toEqual([`regc-prov-${tag}`, 'incomplete: agreement_ref']);
    // Now it has an entry, the add form no longer offers it.
    expect(provider.page.body).not.toContain(`<option value="${providerId}">`);
  });

  it('shows a bad value as a message and saves nothing', async () => {
    const b = await signedIn('compliance');
    const csrf = hidden((await b.get('/console/register')).body, '_csrf');
    const name = `Bad ${tag}`;
    const fields = (extra: [string, string][]): [string, string][] => [['_csrf', csrf], ['kind', 'hosting'], ['name', name], ['role', 'processor'], ['reason', 'trying bad values'], ...extra];

    const country = await b.post('/console/register/recipients', fields([['countries', 'DE, usa']]));
    expect(country.status).toBe(400);
    expect(flash(country.body)?.[0]).toBe('error');
    expect(flash(country.body)?.[1]).toContain('a country is an ISO 3166-1 alpha-2 code in capitals (DE, US)');
    expect(country.body).toContain('<a href="/console/register">Back</a>');
    expect(country.body).not.toMatch(/at \w+ \(|node_modules|\.ts:\d+/);

    const scc = await b.post('/console/register/recipients', fields([['countries', 'US'], ['transferMechanism', 'standard_contractual_clauses'], ['sccDate', '']]));
    expect(scc.status).toBe(400);
    expect(flash(scc.body)?.[1]).toContain('standard contractual clauses need their date');

    const noReason = await b.post('/console/register/activities', [['_csrf', csrf], ['key', `bad_${tag}`], ['purpose', 'Something'], ['legalBasis', 'contract'], ['dataSubjectCategories', 'a'], ['dataCategories', 'b'], ['systems', 'c'], ['reason', '']]);
    expect(noReason.status).toBe(400);
    expect(flash(noReason.body)?.[1]).toContain('reason must be at least 3 characters');

    const noList = await b.post('/console/register/activities', [['_csrf', csrf], ['key', `bad_${tag}`], ['purpose', 'Something'], ['legalBasis', 'contract'], ['dataSubjectCategories', ' , '], ['dataCategories', 'b'], ['systems', 'c'], ['reason', 'a good reason']]);
    expect(noList.status).toBe(400);
    expect(flash(noList.body)?.[1]).toContain('dataSubjectCategories needs at least one entry');

    const nothing = await b.post('/console/register/activities/change', [['_csrf', csrf], ['id', randomUUID()], ['purpose', ''], ['reason', 'nothing to change']]);
    expect(nothing.status).toBe(400);
    expect(flash(nothing.body)?.[1]).toContain('nothing to change');
    const unknown = await b.post('/console/register/recipients/change', [['_csrf', csrf], ['id', randomUUID()], ['agreementRef', 'X-1'], ['reason', 'no such recipient']]);
    expect(unknown.status).toBe(404);

    expect(await db('recipients').where({ name })).toHaveLength(0);
    expect(await db('processing_activities').where({ key: `bad_${tag}` })).toHaveLength(0);
    expect(await db('register_changes').where({ reason: 'trying bad values' })).toHaveLength(0);
  });

  it("records an account's decision on a sub-processor notice, with who and the account's words", async () => {
    const account = await accountsService({ db, clock: systemClock, config }).createAccount({ name: `RegC Co ${tag}`, country: 'DE' });
    const subs = subprocessorService({ db, clock: systemClock });
    await subs.agreements.set(account.id, { agreementRef: `DPA-${tag}`, signedOn: '2026-01-15', reason: 'DPA countersigned' }, 'cli:test');
    const b = await signedIn('compliance');
    const csrf = hidden((await b.get('/console/register')).body, '_csrf');
    const hosted = await submit(b, '/console/register/recipients', [['_csrf', csrf], ['kind', 'hosting'], ['name', `Host ${tag}`], ['role', 'sub_processor'], ['countries', 'FI'], ['reason', 'new hosting']]);
    expect(flash(hosted.page.body)?.[1]).toContain('This is a sub-processor change');
    const recipient = await db('recipients').where({ name: `Host ${tag}` }).first();
    const change = await db('subprocessor_changes').where({ recipient_id: recipient.id }).first();
    // The form offers the change.
    expect(hosted.page.body).toContain(`<option value="${change.id}">Host ${tag}, announced`);

    const noReason = await b.post('/console/register/notices/decide', [['_csrf', csrf], ['changeId', change.id], ['accountId', account.id], ['decision', 'object'], ['reason', '']]);
    expect(noReason.status).toBe(400);
    expect((await subs.notices.get(change.id, account.id))?.status).toBe('pending');

    const decided = await submit(b, '/console/register/notices/decide', [['_csrf', csrf], ['changeId', change.id], ['accountId', account.id], ['decision', 'object'], ['reason', 'customer email of 3 Dec']]);
    expect(flash(decided.page.body)).toEqual(['ok', 'The account&#39;s decision is recorded.']);
    const n = await db('subprocessor_notices').where({ change_id: change.id, account_id: account.id }).first();
    expect(n).toMatchObject({ status: 'objected', decided_by: `staff-user:${staff.compliance.id} (customer email of 3 Dec)` });
    const again = await submit(b, '/console/register/notices/decide', [['_csrf', csrf], ['changeId', change.id], ['accountId', account.id], ['decision', 'object'], ['reason', 'customer email of 3 Dec']]);
    expect(flash(again.page.body)?.[1]).toContain('nothing changed');
    expect((await b.post('/console/register/notices/decide', [['_csrf', csrf], ['changeId', change.id], ['accountId', randomUUID()], ['decision', 'accept'], ['reason', 'customer asked']])).status).toBe(404);
  });

  it('refuses billing staff: the page and every form answer 403, nothing is saved', async () => {
    const b = await signedIn('billing');
    expect((await b.get('/console/register')).status).toBe(403);
    const csrf = hidden((await b.get('/console/accounts')).body, '_csrf');
    expect(csrf).not.toBe('');
    const forms: [string, [string, string][]][] = [
      ['/console/register/activities', [['key', `billing_${tag}`], ['purpose', 'Not allowed'], ['legalBasis', 'contract'], ['dataSubjectCategories', 'a'], ['dataCategories', 'b'], ['systems', 'c'], ['reason', `billing try ${tag}`]]],
      ['/console/register/activities/change', [['id', randomUUID()], ['purpose', 'Not allowed'], ['reason', `billing try ${tag}`]]],
      ['/console/register/recipients', [['kind', 'other'], ['name', `Billing ${tag}`], ['reason', `billing try ${tag}`]]],
      ['/console/register/recipients/change', [['id', randomUUID()], ['agreementRef', 'X'], ['reason', `billing try ${tag}`]]],
      ['/console/register/notices/decide', [['changeId', randomUUID()], ['accountId', randomUUID()], ['decision', 'accept'], ['reason', `billing try ${tag}`]]],
    ];
    for (const [path, fields] of forms) {
      const r = await b.post(path, [['_csrf', csrf], ...fields]);
      expect(r.status, path).toBe(403);
    }
    expect(await db('processing_activities').where({ key: `billing_${tag}` })).toHaveLength(0);
    expect(await db('recipients').where({ name: `Billing ${tag}` })).toHaveLength(0);
    expect(await db('register_changes').where({ reason: `billing try ${tag}` })).toHaveLength(0);
  });
});
