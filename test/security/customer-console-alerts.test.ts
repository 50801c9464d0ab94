import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminApp } from '../../src/admin/app';
import { systemClock } from '../../src/clock';
import { browser as makeBrowser, csrfOf, customerWithPassword, signedIn, signIn } from '../helpers/customerConsole';
import { silentLogger, testConfig, testDb } from '../helpers/env';
import { serve } from '../helpers/servers';

/**
 * Attacks on the customer console's Alerts and webhooks page: webhook URLs to
 * internal addresses, out-of-bounds thresholds, unknown event types, markup in
 * stored values, and the signing secret leaking onto a later page or into the
 * database in clear.
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

async function member() {
  const c = await customerWithPassword(db, config, PASSWORD);
  await db('users').where({ id: c.userId }).update({ console_role: 'developer' });
  const b = makeBrowser(base, { 'x-forwarded-for': `198.51.100.${++lastOctet}` });
  expect(signedIn(await signIn(b, c.email, PASSWORD))).toBe(true);
  const csrf = await csrfOf(b);
  /** A form post with repeated fields (the events checkboxes). */
  const post = async (path: string, fields: [string, string][]) => {
    const r = await fetch(base + path, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: [...b.jar].map(([k, v]) => `${k}=${v}`).join('; ') },
      body: new URLSearchParams([['_csrf', csrf], ...fields]).toString(),
    });
    return { status: r.status, body: await r.text(), headers: r.headers };
  };
  return { ...c, b, csrf, post };
}

const alertText = (body: string) => /<p role="alert">([^<]*)<\/p>|class="flash[^"]*"[^>]*>([^<]*)</.exec(body)?.slice(1).join('') ?? body;

describe('Alerts and webhooks under attack', () => {
  it('refuses webhook URLs to private, loopback-like, link-local or internal addresses with a message, storing nothing', async () => {
    const m = await member();
    for (const url of ['http://10.0.0.5/hook', 'http://192.168.1.10/hook', 'http://169.254.169.254/latest/meta-data', 'http://[fd00::1]/hook', 'http://[::ffff:10.0.0.1]/x']) {
      const r = await m.post('/app/alerts/webhooks', [['url', url], ['events', 'balance.low']]);
      expect(r.status, url).toBe(400);
      expect(r.body).toContain('non-public address');
      expect(r.body).not.toMatch(/at \w+ \(|node_modules/);
    }
    for (const url of ['ftp://hooks.example.com/x', 'https://user:pw@hooks.example.com/x', 'javascript:alert(1)']) {
      const r = await m.post('/app/alerts/webhooks', [['url', url], ['events', 'balance.low']]);
      expect(r.status, url).toBe(400);
    }
    expect(await db('webhook_endpoints').where({ account_id: m.accountId })).toHaveLength(0);
  });

  it('refuses too many, negative, zero, huge or malformed thresholds and saves nothing', async () => {
    const m = await member();
    expect((await m.post('/app/alerts/settings', [['low_balance_thresholds', '20'], ['email_alerts', 'on']])).status).toBe(303);
    const cases: [string, RegExp][] = [
      ['1, 2, 3, 4, 5, 6', /at most 5/],
      ['-5', /decimal string|more than 0/],
      ['0', /more than 0/],
      ['1000000000000', /at most 1000000000/],
      ['1e3', /decimal string/],
      ['x'.repeat(401), /too long/],
    ];
    for (const [value, message] of cases) {
      const r = await m.post('/app/alerts/settings', [['low_balance_thresholds', value]]);
      expect(r.status, value).toBe(400);
      expect(alertText(r.body)).toMatch(message);
      const row = await db('account_alert_settings').where({ account_id: m.accountId }).first();
      expect(row.low_balance_thresholds.map(Number)).toEqual([20]);
      expect(row.email_alerts).toBe(true);
    }
    // The field twice is not a list.
    expect((await m.post('/app/alerts/settings', [['low_balance_thresholds', '1'], ['low_balance_thresholds', '2']])).status).toBe(400);
  });

  it('refuses an event type not in the list, none at all, or a repeated one', async () => {
    const m = await member();
    for (const events of [['balance.low', 'admin.everything'], [], ['balance.low', 'balance.low'], ['<script>']]) {
      const r = await m.post('/app/alerts/webhooks', [['url', 'https://hooks.example.com/x'], ...events.map((e): [string, string] => ['events', e])]);
      expect(r.status, events.join()).toBe(400);
      expect(r.body).not.toContain('<script>');
    }
    expect(await db('webhook_endpoints').where({ account_id: m.accountId })).toHaveLength(0);
  });

  it('escapes markup in a stored URL and in event data', async () => {
    const m = await member();
    const url = 'https://hooks.example.com/"><script>alert(1)</script>';
    const r = await m.post('/app/alerts/webhooks', [['url', url], ['events', 'invoice.paid']]);
    expect(r.status, r.body).toBe(200);
    await db('account_events').insert({ account_id: m.accountId, type: 'invoice.paid', data: JSON.stringify({ number: '<img src=x onerror=alert(2)>' }), dedupe_key: `cc-alerts-sec:${m.accountId}` });
    const page = await m.b.get('/app/alerts');
    expect(page.body).not.toContain('<script>alert(1)');
    expect(page.body).not.toContain('<img src=x');
    expect(page.body).toContain('&lt;img src=x onerror=alert(2)&gt;');
    const id = (await db('webhook_endpoints').where({ account_id: m.accountId }).first()).id;
    const detail = await m.b.get(`/app/alerts/webhooks/${id}`);
    expect(detail.body).not.toContain('<script>alert(1)');
    expect(detail.body).toContain('&lt;script&gt;');
  });

  it('never shows the signing secret again, nor stores it in clear', async () => {
    const m = await member();
    const r = await m.post('/app/alerts/webhooks', [['url', 'https://hooks.example.com/secret-test'], ['events', 'balance.low']]);
    expect(r.status).toBe(200);
    expect(r.headers.get('cache-control')).toBe('no-store');
    const secret = /<code id="new-secret">([^<]+)<\/code>/.exec(r.body)?.[1] ?? '';
    expect(secret).toMatch(/^whsec_/);
    const row = await db('webhook_endpoints').where({ account_id: m.accountId }).first();
    const inClear = [secret, secret.slice('whsec_'.length), Buffer.from(secret.slice('whsec_'.length), 'base64').toString('hex')];
    const stored = JSON.stringify(row, (_k, v: unknown) => (Buffer.isBuffer(v) ? v.toString('hex') : v));
    for (const s of inClear) expect(stored).not.toContain(s);
    for (const path of ['/app/alerts', `/app/alerts/webhooks/${row.id}`, '/app']) {
      const page = await m.b.get(path);
      expect(page.status, path).toBe(200);
      expect(page.body, path).not.toContain(secret);
      expect(page.body, path).not.toContain(secret.slice('whsec_'.length, 30));
    }
  });
});
