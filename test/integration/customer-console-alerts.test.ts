import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminApp } from '../../src/admin/app';
import { systemClock } from '../../src/clock';
import { browser as makeBrowser, csrfOf, customerWithPassword, signedIn, signIn, type Browser } from '../helpers/customerConsole';
import { silentLogger, testConfig, testDb } from '../helpers/env';
import { serve } from '../helpers/servers';

/**
 * The customer console's Alerts and webhooks page (/app/alerts, issue 26):
 * alert settings, recent events, webhook endpoints (the secret shown once)
 * and their delivery log; one account's member never reaching another's
 * endpoints; CSRF.
 */
const config = testConfig({ TRUSTED_PROXIES: 'loopback', WEBHOOK_ALLOWED_HOSTS: '127.0.0.1' });
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

const browser = () => makeBrowser(base, { 'x-forwarded-for': `203.0.113.${++lastOctet}` });

async function member(role: 'owner' | 'admin' | 'developer' | 'billing' = 'owner') {
  const c = await customerWithPassword(db, config, PASSWORD);
  await db('users').where({ id: c.userId }).update({ console_role: role });
  const b = browser();
  expect(signedIn(await signIn(b, c.email, PASSWORD))).toBe(true);
  return { ...c, b, csrf: await csrfOf(b) };
}

const secretOf = (body: string) => /<code id="new-secret">([^<]+)<\/code>/.exec(body)?.[1] ?? '';

async function addEndpoint(m: { b: Browser; csrf: string; accountId: string }, url = 'https://hooks.example.com/mixroute') {
  const r = await fetch(`${base}/app/alerts/webhooks`, {
    method: 'POST',
    redirect: 'manual',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      'x-forwarded-for': '203.0.113.250',
      cookie: [...m.b.jar].map(([k, v]) => `${k}=${v}`).join('; '),
    },
    body: `_csrf=${encodeURIComponent(m.csrf)}&url=${encodeURIComponent(url)}&events=balance.low&events=invoice.paid`,
  });
  const body = await r.text();
  expect(r.status, body).toBe(200);
  const row = await db('webhook_endpoints').where({ account_id: m.accountId }).orderBy('created_at', 'desc').first();
  return { res: r, body, secret: secretOf(body), id: row.id as string };
}

async function insertEvent(accountId: string, type: string, data: Record<string, unknown>) {
  const [row] = await db('account_events')
    .insert({ account_id: accountId, type, data: JSON.stringify(data), dedupe_key: `cc-alerts:${type}:${accountId}:${Math.random()}` })
    .returning('id');
  return (row as { id: string }).id;
}

describe('the Alerts and webhooks page', () => {
  it('is in the navigation of every role and shows the settings form and the event types', async () => {
    for (const role of ['owner', 'admin', 'developer', 'billing'] as const) {
      const m = await member(role);
      const page = await m.b.get('/app/alerts');
      expect(page.status, role).toBe(200);
      expect(page.body).toContain('href="/app/alerts"');
      expect(page.body).toContain('name="low_balance_thresholds"');
      expect(page.body).toContain('value="subprocessor.announced"');
    }
  });

  it('changes the thresholds and the email switch, and shows recent events', async () => {
    const m = await member('billing');
    const r = await m.b.post('/app/alerts/settings', { _csrf: m.csrf, low_balance_thresholds: '10, 50.5', email_alerts: 'on' });
    expect(r.status, r.body).toBe(303);
    expect(r.location).toBe('/app/alerts?msg=alerts_settings_saved');
    const row = await db('account_alert_settings').where({ account_id: m.accountId }).first();
    expect(row.low_balance_thresholds.map(Number)).toEqual([50.5, 10]);
    expect(row.email_alerts).toBe(true);
    let page = await m.b.get('/app/alerts?msg=alerts_settings_saved');
    expect(page.body).toContain('The alert settings were saved.');
    expect(page.body).toMatch(/value="50\.5, 10"/);
    expect(page.body).toMatch(/name="email_alerts" value="on" checked/);
    // The overview lists the alerts in force.
    const overview = await m.b.get('/app');
    expect(overview.body).toContain('<p id="alerts-low-balance">Low balance: when it falls below 50.50, 10.00 USD, emailed to the billing address</p>');

    // An unchecked box is "off"; an empty field clears the thresholds.
    expect((await m.b.post('/app/alerts/settings', { _csrf: m.csrf, low_balance_thresholds: '' })).status).toBe(303);
    const off = await db('account_alert_settings').where({ account_id: m.accountId }).first();
    expect(off.email_alerts).toBe(false);
    expect(off.low_balance_thresholds).toEqual([]);
    expect((await m.b.get('/app')).body).toContain('<p id="alerts-low-balance">No low-balance alerts</p>');

    await insertEvent(m.accountId, 'topup.succeeded', { amount: '25.00', currency: 'USD' });
    page = await m.b.get('/app/alerts');
    expect(page.body).toContain('topup.succeeded');
    expect(page.body).toContain('top-up of 25.00 USD credited');
  });

  it('adds an endpoint: the secret is shown once (no-store, not in a URL), and the delivery log shows its deliveries', async () => {
    const m = await member('developer');
    const { res, secret, id } = await addEndpoint(m);
    expect(secret).toMatch(/^whsec_/);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('location')).toBeNull();

    const list = await m.b.get('/app/alerts');
    expect(list.body).toContain('https://hooks.example.com/mixroute');
    expect(list.body).toContain('balance.low, invoice.paid');
    expect(list.body).toContain(`/app/alerts/webhooks/${id}`);
    expect(list.body).not.toContain(secret);

    await insertEvent(m.accountId, 'invoice.paid', { number: 'INV-1' });
    const detail = await m.b.get(`/app/alerts/webhooks/${id}`);
    expect(detail.status).toBe(200);
    expect(detail.body).not.toContain(secret);
    const deliveries = /<div id="deliveries">([\s\S]*?)<\/div>/.exec(detail.body)?.[1] ?? '';
    expect(deliveries).toContain('invoice.paid');
    expect(deliveries).toMatch(/pending|failed|succeeded/);

    const off = await m.b.post(`/app/alerts/webhooks/${id}/disable`, { _csrf: m.csrf });
    expect(off.location).toBe(`/app/alerts/webhooks/${id}?msg=alerts_endpoint_disabled`);
    expect((await db('webhook_endpoints').where({ id }).first()).status).toBe('disabled');
    const on = await m.b.post(`/app/alerts/webhooks/${id}/enable`, { _csrf: m.csrf });
    expect(on.status).toBe(303);
    expect((await db('webhook_endpoints').where({ id }).first()).status).toBe('active');
  });

  it("another account's member can neither see nor act on the endpoint or its deliveries", async () => {
    const owner = await member('owner');
    const { id } = await addEndpoint(owner);
    const eventId = await insertEvent(owner.accountId, 'balance.low', { threshold: '10', currency: 'USD' });
    const delivery = await db('webhook_deliveries').where({ endpoint_id: id, event_id: eventId }).first();
    await db('webhook_deliveries').where({ id: delivery.id }).update({ status: 'failed' });

    const other = await member('owner');
    expect((await other.b.get(`/app/alerts/webhooks/${id}`)).status).toBe(404);
    expect((await other.b.get('/app/alerts')).body).not.toContain('hooks.example.com');
    for (const action of ['disable', 'delete']) expect((await other.b.post(`/app/alerts/webhooks/${id}/${action}`, { _csrf: other.csrf })).status).toBe(404);
    expect((await other.b.post(`/app/alerts/deliveries/${delivery.id}/redeliver`, { _csrf: other.csrf })).status).toBe(404);
    expect((await other.b.get('/app/alerts/webhooks/not-an-id')).status).toBe(404);
    const after = await db('webhook_endpoints').where({ id }).first();
    expect(after.status).toBe('active');
    expect((await db('webhook_deliveries').where({ id: delivery.id }).first()).generation).toBe(delivery.generation);

    // Its own member can send it again, and delete it.
    const again = await owner.b.post(`/app/alerts/deliveries/${delivery.id}/redeliver`, { _csrf: owner.csrf });
    expect(again.location).toBe(`/app/alerts/webhooks/${id}?msg=alerts_redelivered`);
    expect((await db('webhook_deliveries').where({ id: delivery.id }).first()).generation).toBe(delivery.generation + 1);
    expect((await owner.b.post(`/app/alerts/webhooks/${id}/delete`, { _csrf: owner.csrf })).location).toBe('/app/alerts?msg=alerts_endpoint_deleted');
    expect(await db('webhook_endpoints').where({ id }).first()).toBeUndefined();
  });

  it('refuses a POST without the CSRF token, changing nothing', async () => {
    const m = await member('owner');
    const r = await m.b.post('/app/alerts/settings', { low_balance_thresholds: '5', email_alerts: 'on' });
    expect(r.status).toBe(403);
    expect(await db('account_alert_settings').where({ account_id: m.accountId }).first()).toBeUndefined();
    const w = await m.b.post('/app/alerts/webhooks', { url: 'https://hooks.example.com/x', events: 'balance.low' });
    expect(w.status).toBe(403);
    expect(await db('webhook_endpoints').where({ account_id: m.accountId })).toHaveLength(0);
  });

  it('sends a visitor without a session to the sign-in page', async () => {
    const r = await browser().get('/app/alerts');
    expect(r.status).toBe(303);
    expect(r.location).toBe('/app/login');
  });
});
