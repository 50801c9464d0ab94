import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accountsService } from '../../src/accounts/accounts.service';
import { createAdminApp } from '../../src/admin/app';
import { systemClock } from '../../src/clock';
import type { ConsoleRole } from '../../src/customerConsole/customerConsole.rules';
import { browser as makeBrowser, csrfOf, customerWithPassword, hidden, signedIn, signIn } from '../helpers/customerConsole';
import { silentLogger, testConfig, testDb } from '../helpers/env';
import { serve } from '../helpers/servers';

/**
 * Billing details on the customer console's Billing page (/app/billing,
 * issue 26): an owner, admin or billing member sees the company name, VAT id,
 * billing email and country and changes them through the accounts service, with
 * the checks staff input goes through (src/accounts/accountDetails.schemas.ts).
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

async function member(role: ConsoleRole) {
  const c = await customerWithPassword(db, config, PASSWORD);
  await db('users').where({ id: c.userId }).update({ console_role: role });
  const b = makeBrowser(base, { 'x-forwarded-for': `203.0.113.${++lastOctet}` });
  expect(signedIn(await signIn(b, c.email, PASSWORD))).toBe(true);
  return { b, ...c };
}

const account = (id: string) => db('accounts').where({ id }).first('name', 'vat_id', 'billing_email', 'country', 'updated_at');
const dd = (page: string, id: string) => new RegExp(`<dd id="${id}">([^<]*)</dd>`).exec(page)?.[1];

describe('billing details', () => {
  it('shows the details in the form, saves a change, and the page and the account show the new values', async () => {
    const { b, accountId, accountName, userId } = await member('billing');
    const before = await account(accountId);
    const page = await b.get('/app/billing');
    expect(page.status).toBe(200);
    expect(hidden(page.body, 'name')).toBe(accountName);
    expect(hidden(page.body, 'billing_email')).toBe(before.billing_email);
    expect(hidden(page.body, 'country')).toBe('DE');
    expect(hidden(page.body, 'vat_id')).toBe('');
    expect(dd(page.body, 'vat-id')).toBe('—');

    const r = await b.post('/app/billing/details', { _csrf: hidden(page.body, '_csrf'), name: '  Renamed Holding AG ', vat_id: 'ATU12345678', billing_email: 'invoices@renamed.example', country: 'at' });
    expect(r.status).toBe(303);
    expect(r.location).toBe('/app/billing?msg=billing_details_saved');
    const after = await account(accountId);
    // Trimmed and upper-cased as the staff schema does.
    expect(after).toMatchObject({ name: 'Renamed Holding AG', vat_id: 'ATU12345678', billing_email: 'invoices@renamed.example', country: 'AT' });
    expect(after.updated_at.getTime()).toBeGreaterThanOrEqual(before.updated_at.getTime());

    const shown = await b.get(r.location);
    expect(shown.body).toContain('The billing details were saved.');
    expect(dd(shown.body, 'company-name')).toBe('Renamed Holding AG');
    expect(dd(shown.body, 'vat-id')).toBe('ATU12345678');
    expect(dd(shown.body, 'billing-email')).toBe('invoices@renamed.example');
    expect(dd(shown.body, 'country')).toBe('AT');
    expect(await accountsService({ db, clock: systemClock, config }).getAccount({ id: accountId })).toMatchObject({ name: 'Renamed Holding AG', vatId: 'ATU12345678', country: 'AT' });

    // The change is the account's event: which fields, and who (the values are not repeated).
    const events = await db('account_events').where({ account_id: accountId, type: 'account.details_changed' });
    expect(events).toHaveLength(1);
    expect(events[0].data).toEqual({ fields: 'name, vatId, billingEmail, country', changedBy: `customer:${userId}` });
    // Saving the same values again changes nothing and records nothing.
    await b.post('/app/billing/details', { _csrf: hidden(page.body, '_csrf'), name: 'Renamed Holding AG', vat_id: 'ATU12345678', billing_email: 'invoices@renamed.example', country: 'AT' });
    expect(await db('account_events').where({ account_id: accountId, type: 'account.details_changed' })).toHaveLength(1);
    const onlyCountry = await b.post('/app/billing/details', { _csrf: hidden(page.body, '_csrf'), name: 'Renamed Holding AG', vat_id: '', billing_email: 'invoices@renamed.example', country: 'AT' });
    expect(onlyCountry.location).toBe('/app/billing?msg=billing_details_saved');
    expect((await db('account_events').where({ account_id: accountId, type: 'account.details_changed' })).map((e) => e.data.fields).sort()).toEqual(['name, vatId, billingEmail, country', 'vatId']);
  });

  it('an empty VAT id or billing email clears it; an empty company name or country is refused and nothing changes', async () => {
    const { b, accountId, accountName } = await member('owner');
    const csrf = await csrfOf(b);
    await b.post('/app/billing/details', { _csrf: csrf, name: accountName, vat_id: 'DE123456789', billing_email: 'x@example.com', country: 'DE' });
    const cleared = await b.post('/app/billing/details', { _csrf: csrf, name: accountName, vat_id: '', billing_email: ' ', country: 'DE' });
    expect(cleared.location).toBe('/app/billing?msg=billing_details_saved');
    expect(await account(accountId)).toMatchObject({ name: accountName, vat_id: null, billing_email: null, country: 'DE' });

    // Invoices need a country (it sets the tax): it cannot be cleared.
    const noCountry = await b.post('/app/billing/details', { _csrf: csrf, name: accountName, vat_id: '', billing_email: '', country: '' });
    expect(noCountry.status).toBe(400);
    expect(noCountry.body).toContain('The billing details were not saved.');
    expect(await account(accountId)).toMatchObject({ country: 'DE' });

    const refused = await b.post('/app/billing/details', { _csrf: csrf, name: '   ', vat_id: 'DE999', billing_email: '', country: 'DE' });
    expect(refused.status).toBe(400);
    expect(refused.body).toContain('The billing details were not saved. Company name: name must not be empty');
    expect(await account(accountId)).toMatchObject({ name: accountName, vat_id: null });
  });

  it('owners and admins may change them too; a developer gets 403 and changes nothing', async () => {
    for (const role of ['owner', 'admin'] as const) {
      const { b, accountId } = await member(role);
      const r = await b.post('/app/billing/details', { _csrf: await csrfOf(b), name: `By ${role} Ltd`, vat_id: '', billing_email: '', country: 'GB' });
      expect(r.location, role).toBe('/app/billing?msg=billing_details_saved');
      expect(await account(accountId)).toMatchObject({ name: `By ${role} Ltd`, country: 'GB' });
    }
    const dev = await member('developer');
    const before = await account(dev.accountId);
    const r = await dev.b.post('/app/billing/details', { _csrf: await csrfOf(dev.b), name: 'Developer Was Here', vat_id: '', billing_email: '', country: '' });
    expect(r.status).toBe(403);
    expect(await account(dev.accountId)).toEqual(before);
  });
});
