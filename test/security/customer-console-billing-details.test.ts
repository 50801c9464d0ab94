import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminApp } from '../../src/admin/app';
import { systemClock } from '../../src/clock';
import type { ConsoleRole } from '../../src/customerConsole/customerConsole.rules';
import { browser as makeBrowser, csrfOf, customerWithPassword, signedIn, signIn } from '../helpers/customerConsole';
import { silentLogger, testConfig, testDb } from '../helpers/env';
import { serve } from '../helpers/servers';

/**
 * Attacks on the billing details form of the customer console
 * (POST /app/billing/details): values the staff schema refuses, oversized and
 * repeated fields, a developer posting directly, another account's id slipped
 * into the form, a forged post, and markup in the values. Whatever is refused
 * leaves the account as it was and answers with a page message, not a trace.
 */
const config = testConfig({ TRUSTED_PROXIES: 'loopback' });
const db = testDb(config);
const PASSWORD = 'correct horse battery staple';
let base: string;
let close: () => Promise<void>;
let lastOctet = 0;

beforeAll(async () => {
  const app = createAdminApp({ db, billing: config.billing, config, clock: systemClock, logger: silentLogger, readiness: {}, readyCheckTimeoutMs: 1000 });
  ({ url: base, close } = await serve(app));
});
afterAll(async () => {
  await close();
  await db.destroy();
});

async function member(role: ConsoleRole = 'billing') {
  const c = await customerWithPassword(db, config, PASSWORD);
  await db('users').where({ id: c.userId }).update({ console_role: role });
  const b = makeBrowser(base, { 'x-forwarded-for': `198.51.100.${++lastOctet}` });
  expect(signedIn(await signIn(b, c.email, PASSWORD))).toBe(true);
  return { b, ...c };
}

const details = (id: string) => db('accounts').where({ id }).first('name', 'vat_id', 'billing_email', 'country', 'updated_at');
const noTrace = (body: string) => {
  expect(body).not.toMatch(/\bat .+\.(ts|js):\d+/);
  expect(body).not.toContain('ZodError');
};

describe('values the staff schema refuses', () => {
  it('a bad VAT id, email or country is refused with a message naming the field, and nothing is saved', async () => {
    const { b, accountId, accountName } = await member();
    const csrf = await csrfOf(b);
    const before = await details(accountId);
    const ok = { _csrf: csrf, name: accountName, vat_id: 'DE123456789', billing_email: 'billing@example.com', country: 'DE' };
    const cases: [Record<string, string>, string][] = [
      [{ vat_id: 'DE'.repeat(17) }, 'VAT id:'],
      [{ billing_email: 'not an email' }, 'Billing email: billingEmail must be an email address'],
      [{ billing_email: 'a@b@example.com' }, 'Billing email:'],
      [{ country: 'DEU' }, 'Country: country must be an ISO 3166-1 alpha-2 code'],
      [{ country: '1A' }, 'Country:'],
      [{ name: 'x'.repeat(201) }, 'Company name:'],
    ];
    for (const [change, message] of cases) {
      const r = await b.post('/app/billing/details', { ...ok, ...change });
      expect(r.status, JSON.stringify(change)).toBe(400);
      expect(r.body).toContain('The billing details were not saved.');
      expect(r.body).toContain(message);
      noTrace(r.body);
    }
    expect(await details(accountId)).toEqual(before);
  });

  it('oversized and repeated fields are refused before they are looked at; nothing is saved', async () => {
    const { b, accountId, accountName } = await member();
    const csrf = await csrfOf(b);
    const before = await details(accountId);
    for (const field of ['name', 'vat_id', 'billing_email', 'country']) {
      const r = await b.post('/app/billing/details', { _csrf: csrf, name: accountName, [field]: `${'a'.repeat(5_000)}@example.com` });
      expect(r.status, field).toBe(400);
      expect(r.body).toContain('at most 320 characters');
      noTrace(r.body);
    }
    // An email address the schema's pattern accepts whatever its length is still bounded here.
    const long = await b.post('/app/billing/details', { _csrf: csrf, name: accountName, billing_email: `${'a'.repeat(400)}@example.com` });
    expect(long.status).toBe(400);
    const cookie = [...b.jar].map(([k, v]) => `${k}=${v}`).join('; ');
    const twice = await fetch(`${base}/app/billing/details`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie, 'x-forwarded-for': `198.51.100.${lastOctet}` },
      body: `_csrf=${encodeURIComponent(csrf)}&name=${encodeURIComponent(accountName)}&vat_id=DE1&vat_id=DE2`,
    });
    expect(twice.status).toBe(400);
    expect(await twice.text()).toContain('VAT id: give it once');
    expect(await details(accountId)).toEqual(before);
  });
});

describe('whose account', () => {
  it('a developer posting the form directly gets 403 and changes nothing', async () => {
    const { b, accountId } = await member('developer');
    const before = await details(accountId);
    const r = await b.post('/app/billing/details', { _csrf: await csrfOf(b), name: 'Taken Over Ltd', vat_id: 'XX1', billing_email: 'attacker@example.com', country: 'FR' });
    expect(r.status).toBe(403);
    expect(await details(accountId)).toEqual(before);
  });

  it("another account's id in the form is ignored: the session's account is changed, the other one is not", async () => {
    const { b, accountId } = await member();
    const victim = await member('owner');
    const victimBefore = await details(victim.accountId);
    const r = await b.post('/app/billing/details', {
      _csrf: await csrfOf(b),
      id: victim.accountId,
      accountId: victim.accountId,
      account_id: victim.accountId,
      name: 'Mine Not Yours Ltd',
      vat_id: '',
      billing_email: 'mine@example.com',
      country: 'NL',
    });
    expect(r.location).toBe('/app/billing?msg=billing_details_saved');
    expect(await details(accountId)).toMatchObject({ name: 'Mine Not Yours Ltd', billing_email: 'mine@example.com', country: 'NL' });
    expect(await details(victim.accountId)).toEqual(victimBefore);
  });

  it('without the CSRF token, or with another session’s, nothing changes; signed out, it is a redirect to sign in', async () => {
    const { b, accountId } = await member();
    const other = await member();
    const before = await details(accountId);
    for (const _csrf of [undefined, '', await csrfOf(other.b)]) {
      const r = await b.post('/app/billing/details', { ...(_csrf === undefined ? {} : { _csrf }), name: 'Forged Ltd' });
      expect(r.status).toBe(403);
    }
    const anonymous = makeBrowser(base, { 'x-forwarded-for': `198.51.100.${++lastOctet}` });
    expect((await anonymous.post('/app/billing/details', { name: 'Forged Ltd' })).location).toBe('/app/login');
    expect(await details(accountId)).toEqual(before);
  });
});

describe('markup in the values', () => {
  it('is stored as text and shown escaped, in the list and in the form', async () => {
    const { b, accountId } = await member();
    const name = `"><script>alert(1)</script> Co`;
    const r = await b.post('/app/billing/details', { _csrf: await csrfOf(b), name, vat_id: 'DE123456789', billing_email: '', country: 'DE' });
    expect(r.location).toBe('/app/billing?msg=billing_details_saved');
    expect((await details(accountId))?.name).toBe(name);
    const page = await b.get('/app/billing');
    expect(page.body).not.toContain('<script>alert(1)');
    expect(page.body).toContain('value="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt; Co"');
  });
});

describe('a VAT id typed by the customer', () => {
  it('must look like a VAT number of the account\'s country: another country\'s or a made-up one is refused (it would make invoices reverse-charged)', async () => {
    const { b, accountId } = await member();
    const before = await details(accountId);
    for (const vat_id of ['FR12345678901', 'not a vat id', '"><b>x</b>', 'DE1']) {
      const r = await b.post('/app/billing/details', { _csrf: await csrfOf(b), name: 'Vat Check GmbH', vat_id, billing_email: '', country: 'DE' });
      expect(r.status, vat_id).toBe(400);
      expect(r.body, vat_id).toContain('The billing details were not saved.');
      expect(r.body).not.toContain('<b>x</b>');
    }
    expect(await details(accountId)).toEqual(before);
    const ok = await b.post('/app/billing/details', { _csrf: await csrfOf(b), name: 'Vat Check GmbH', vat_id: 'DE 123 456 789', billing_email: '', country: 'DE' });
    expect(ok.location).toBe('/app/billing?msg=billing_details_saved');
  });
});
