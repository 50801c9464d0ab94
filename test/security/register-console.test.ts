import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminApp } from '../../src/admin/app';
import { systemClock } from '../../src/clock';
import { staffService } from '../../src/staff/staff.service';
import { silentLogger, testConfig, testDb } from '../helpers/env';
import { serve } from '../helpers/servers';

/**
 * Attacks on the console's Register page forms (docs/processing-register.md,
 * "Maintaining it"), over HTTP: a form posted from another site without the
 * session's CSRF token or with another session's, a signed-out post, oversized
 * and repeated fields, control characters, fields the form does not have, and
 * markup typed into a purpose, a name or a reason. Each is refused before
 * anything is written, or shown as text.
 */
const config = testConfig();
const db = testDb(config);
const PASSWORD = 'correct horse battery staple';
const tag = randomUUID().slice(0, 8);
let base: string;
let close: () => Promise<void>;
let email: string;

beforeAll(async () => {
  const app = createAdminApp({ db, billing: config.billing, config, clock: systemClock, logger: silentLogger, readiness: {}, readyCheckTimeoutMs: 1000 });
  ({ url: base, close } = await serve(app));
  email = `compliance-${tag}@mixroute.example`;
  await staffService({ db }).createUser({ email, name: 'Cora Compliance', role: 'compliance', password: PASSWORD });
});
afterAll(async () => {
  await close?.();
  await db.destroy();
});

function browser() {
  const jar = new Map<string, string>();
  const request = async (method: 'GET' | 'POST', path: string, form?: [string, string][] | string, headers: Record<string, string> = {}) => {
    const res = await fetch(base + path, {
      method,
      redirect: 'manual',
      headers: {
        ...headers,
        ...(jar.size ? { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') } : {}),
        ...(form !== undefined ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
      },
      body: form === undefined ? undefined : typeof form === 'string' ? form : new URLSearchParams(form).toString(),
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
    post: (path: string, form: [string, string][] | string, headers?: Record<string, string>) => request('POST', path, form, headers),
  };
}

const hidden = (html: string, name: string) => new RegExp(`name="${name}" value="([^"]*)"`).exec(html)?.[1] ?? '';
const flash = (html: string) => /<p class="flash (ok|error)"[^>]*>([^<]*)<\/p>/.exec(html)?.slice(1, 3) ?? null;

async function signedIn() {
  const b = browser();
  const form = await b.get('/console/login');
  const r = await b.post('/console/login', [['_csrf', hidden(form.body, '_csrf')], ['next', '/console'], ['email', email], ['password', PASSWORD]]);
  expect(r.status).toBe(303);
  return b;
}

/** A valid form's fields; `over` replaces fields (or adds them), `extra` adds pairs as they are (a name may repeat). */
function fields(base: Record<string, string>, over: Record<string, string>, extra: [string, string][]): [string, string][] {
  return [...Object.entries({ ...base, ...over }), ...extra];
}
const activity = (key: string, over: Record<string, string> = {}, extra: [string, string][] = []) =>
  fields({ key, purpose: 'Security testing', legalBasis: 'contract', dataSubjectCategories: 'testers', dataCategories: 'nothing real', systems: 'console', reason: 'security test' }, over, extra);
const recipient = (name: string, over: Record<string, string> = {}, extra: [string, string][] = []) => fields({ kind: 'other', name, reason: 'security test' }, over, extra);

/** Nothing with this key or name exists, and no change was logged for it. */
async function nothingSaved(key: string, name: string) {
  expect(await db('processing_activities').where({ key })).toHaveLength(0);
  expect(await db('recipients').where({ name })).toHaveLength(0);
}

describe('CSRF and sessions', () => {
  it('refuses every register form posted without the session token, with a wrong one, or with another session’s', async () => {
    const cora = await signedIn();
    const real = hidden((await cora.get('/console/register')).body, '_csrf');
    expect(real).not.toBe('');
    const other = hidden((await (await signedIn()).get('/console/register')).body, '_csrf');
    expect(other).not.toBe(real);
    const key = `csrf_${tag}`;
    const name = `CSRF ${tag}`;
    const forms: [string, [string, string][]][] = [
      ['/console/register/activities', activity(key)],
      ['/console/register/recipients', recipient(name)],
      ['/console/register/activities/change', [['id', randomUUID()], ['purpose', 'changed by a forged form'], ['reason', 'security test']]],
      ['/console/register/recipients/change', [['id', randomUUID()], ['agreementRef', 'FORGED'], ['reason', 'security test']]],
      ['/console/register/notices/decide', [['changeId', randomUUID()], ['accountId', randomUUID()], ['decision', 'accept'], ['reason', 'security test']]],
    ];
    for (const [path, fields] of forms) {
      const missing = await cora.post(path, fields);
      expect(missing.status, path).toBe(403);
      expect(missing.body).toContain('CSRF');
      expect((await cora.post(path, [['_csrf', 'x'.repeat(real.length)], ...fields])).status, path).toBe(403);
      expect((await cora.post(path, [['_csrf', other], ...fields])).status, path).toBe(403);
      // The htmx header with a wrong token is no better.
      expect((await cora.post(path, fields, { 'x-csrf-token': other })).status, path).toBe(403);
      // Signed out: to the sign-in page.
      const anon = await browser().post(path, [['_csrf', real], ...fields]);
      expect(anon.status, path).toBe(303);
      expect(anon.location).toMatch(/^\/console\/login/);
    }
    await nothingSaved(key, name);
  });
});

describe('input', () => {
  it('refuses over-long fields with a message, and saves nothing', async () => {
    const cora = await signedIn();
    const csrf = hidden((await cora.get('/console/register')).body, '_csrf');
    const key = `long_${tag}`;
    const name = `Long ${tag}`;
    const cases: [string, [string, string][], string][] = [
      ['/console/register/activities', activity(key, { purpose: 'p'.repeat(501) }), 'purpose must be at most 500 characters'],
      ['/console/register/activities', activity(key, { reason: 'r'.repeat(5000) }), 'reason must be at most 500 characters'],
      ['/console/register/activities', activity(key, { dataCategories: Array.from({ length: 31 }, (_, i) => `cat${i}`).join(',') }), 'dataCategories holds at most 30 entries'],
      ['/console/register/activities', activity(key, { systems: `gateway,${'s'.repeat(101)}` }), 'systems must be at most 100 characters'],
      ['/console/register/activities', activity(`${key}_${'k'.repeat(80)}`), 'key: 2-63 characters'],
      ['/console/register/recipients', recipient(`${name} ${'n'.repeat(200)}`), 'name must be at most 200 characters'],
      ['/console/register/recipients', recipient(name, { countries: Array.from({ length: 51 }, (_, i) => `${String.fromCharCode(65 + Math.floor(i / 26))}${String.fromCharCode(65 + (i % 26))}`).join(',') }), 'countries holds at most 50 codes'],
      ['/console/register/recipients', recipient(name, { transferNote: 't'.repeat(1001) }), 'transferNote must be at most 1000 characters'],
      ['/console/register/recipients', recipient(name, { agreementRef: 'a'.repeat(201) }), 'agreementRef must be at most 200 characters'],
    ];
    for (const [path, fields, text] of cases) {
      const r = await cora.post(path, [['_csrf', csrf], ...fields]);
      expect(r.status, text).toBe(400);
      expect(flash(r.body)?.[0]).toBe('error');
      expect(flash(r.body)?.[1]).toContain(text);
    }
    // A body over the console's limit is refused whole, without a stack trace.
    const huge = await cora.post('/console/register/activities', `_csrf=${csrf}&${new URLSearchParams(activity(key, { purpose: 'x'.repeat(70_000) })).toString()}`);
    expect(huge.status).toBe(413);
    expect(huge.body).not.toMatch(/at \w+ \(|node_modules|\.ts:\d+/);
    await nothingSaved(key, name);
    await nothingSaved(`${key}_${'k'.repeat(80)}`, `${name} ${'n'.repeat(200)}`);
  });

  it('refuses repeated fields, control characters and unknown ids with a message; ignores fields the form does not have', async () => {
    const cora = await signedIn();
    const csrf = hidden((await cora.get('/console/register')).body, '_csrf');
    const key = `odd_${tag}`;
    // A text field sent twice arrives as a list: refused as not text, not a server error.
    const twice = await cora.post('/console/register/activities', [['_csrf', csrf], ...activity(key, {}, [['purpose', 'second purpose']])]);
    expect(twice.status).toBe(400);
    expect(flash(twice.body)?.[1]).toContain('purpose must be text');
    const kinds = await cora.post('/console/register/activities', [['_csrf', csrf], ...activity(key, {}, [['recipientKinds', 'hosting'], ['recipientKinds', 'attacker']])]);
    expect(kinds.status).toBe(400);
    expect(flash(kinds.body)?.[1]).toContain('recipientKinds: each must be one of');
    // A line break would forge lines in logs and terminals.
    const newline = await cora.post('/console/register/recipients', [['_csrf', csrf], ...recipient(`Line ${tag}`, { transferNote: 'one\nINFO forged line' })]);
    expect(newline.status).toBe(400);
    expect(flash(newline.body)?.[1]).toContain('one line of text without control characters');
    // Ids that are not ids: not found, not a 500.
    for (const id of ['not-an-id', "' OR 1=1 --", '']) {
      const r = await cora.post('/console/register/recipients/change', [['_csrf', csrf], ['id', id], ['agreementRef', 'X-1'], ['reason', 'security test']]);
      expect(r.status, id).toBe(404);
    }
    await nothingSaved(key, `Line ${tag}`);

    // Fields the form does not have (a provider id for another kind, timestamps, an id) are not stored.
    const extra = await cora.post('/console/register/recipients', [['_csrf', csrf], ...recipient(`Extra ${tag}`, { providerId: randomUUID(), createdAt: '2000-01-01', id: randomUUID() })]);
    expect(extra.status).toBe(303);
    const stored = await db('recipients').where({ name: `Extra ${tag}` }).first();
    expect(stored.provider_id).toBeNull();
    expect(new Date(stored.created_at).getFullYear()).toBeGreaterThan(2000);
  });

  it('shows markup typed into a purpose, a name or a reason as text', async () => {
    const cora = await signedIn();
    const csrf = hidden((await cora.get('/console/register')).body, '_csrf');
    const evil = `<script>alert(1)</script><img src=x onerror="alert(2)">`;
    const key = `xss_${tag}`;
    const added = await cora.post('/console/register/activities', [['_csrf', csrf], ...activity(key, { purpose: `Purpose ${evil}`, reason: `Reason ${evil}` })]);
    expect(added.status, added.body).toBe(303);
    const rec = await cora.post('/console/register/recipients', [['_csrf', csrf], ['kind', 'other'], ['name', `Name ${evil} ${tag}`], ['reason', 'markup in a name']]);
    expect(rec.status, rec.body).toBe(303);
    const page = await cora.get('/console/register');
    expect(page.status).toBe(200);
    expect(page.body).not.toContain('<script>alert(1)');
    expect(page.body).not.toContain('<img src=x');
    expect(page.body).toContain(`<td>Purpose &lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=&quot;alert(2)&quot;&gt;</td>`);
    expect(page.body).toContain(`<td>Reason &lt;script&gt;alert(1)&lt;/script&gt;`);
    // In the table and in the change form's recipient list.
    expect(page.body).toContain(`<td>Name &lt;script&gt;alert(1)&lt;/script&gt;`);
    expect(page.body).toContain(`>Name &lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=&quot;alert(2)&quot;&gt; ${tag} (other)</option>`);
    // Stored as typed, escaped only on the page.
    expect((await db('processing_activities').where({ key }).first()).purpose).toBe(`Purpose ${evil}`);
    // A service message that repeats the input (a key or name clash) is escaped too.
    const clash = await cora.post('/console/register/recipients', [['_csrf', csrf], ['kind', 'other'], ['name', `Name ${evil} ${tag}`], ['reason', 'markup in a name again']]);
    expect(clash.status).toBe(409);
    expect(clash.body).not.toContain('<script>alert(1)');
    expect(clash.body).toContain('&lt;script&gt;');
  });
});
