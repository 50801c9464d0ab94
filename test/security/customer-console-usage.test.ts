import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accountsService } from '../../src/accounts/accounts.service';
import { createAdminApp } from '../../src/admin/app';
import { systemClock } from '../../src/clock';
import { settleAccountUsage } from '../../src/metering/metering.service';
import { Money } from '../../src/shared/money.rules';
import { browser as makeBrowser, customerWithPassword, signedIn, signIn, type Browser } from '../helpers/customerConsole';
import { silentLogger, testConfig, testDb } from '../helpers/env';
import { serve } from '../helpers/servers';
import { insertUsageEvents } from '../helpers/usageEvents';

/**
 * Attacks on the customer console's Usage page (/app/usage, /app/usage.csv):
 * ranges that are too long or not days, filter values that are no ids,
 * SQL-ish strings, another account's key id, a model name that is a
 * spreadsheet formula or markup, and text that must never appear (the page
 * shows metadata columns only).
 */
const config = testConfig({ TRUSTED_PROXIES: 'loopback' });
const db = testDb(config);
const PASSWORD = 'correct horse battery staple';
let base: string;
let close: () => Promise<void>;
let lastOctet = 0;
const tag = Math.random().toString(36).slice(2, 8);
const today = new Date().toISOString().slice(0, 10);
const yesterday = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
const FORMULA = `=HYPERLINK("http://evil.example/${tag}","x")`;
const MARKUP = `<script>alert("${tag}")</script>`;
const SECRET_UA = `payload-looking-text-${tag}`;

let a: Awaited<ReturnType<typeof customerWithPassword>>;
let other: Awaited<ReturnType<typeof customerWithPassword>>;
let ownKey: string;
let theirKey: { id: string; prefix: string };
let b: Browser;

beforeAll(async () => {
  const app = createAdminApp({ db, billing: config.billing, config, clock: systemClock, logger: silentLogger, readiness: {}, readyCheckTimeoutMs: 1000 });
  ({ url: base, close } = await serve(app));
  const ops = accountsService({ db, clock: systemClock, config });
  a = await customerWithPassword(db, config, PASSWORD, { balance: '100' });
  ownKey = (await ops.createKey({ accountId: a.accountId, userId: a.userId, name: 'mine' })).id;
  other = await customerWithPassword(db, config, PASSWORD, { balance: '100' });
  const k = await ops.createKey({ accountId: other.accountId, userId: other.userId, name: `theirs-${tag}` });
  theirKey = { id: k.id, prefix: (await db('api_keys').where({ id: k.id }).first('prefix')).prefix };
  const noon = new Date(`${yesterday}T12:00:00Z`);
  await insertUsageEvents(db, [
    { account_id: a.accountId, api_key_id: ownKey, model: FORMULA, occurred_at: noon, cost: '0.25', user_agent: SECRET_UA, source_ip: '203.0.113.77', upstream_model: `upstream-${tag}` },
    { account_id: a.accountId, api_key_id: ownKey, model: MARKUP, occurred_at: noon, cost: '0.50', user_agent: SECRET_UA },
  ]);
  await insertUsageEvents(db, [{ account_id: other.accountId, api_key_id: theirKey.id, model: `their-model-${tag}`, occurred_at: noon, cost: '7.00' }]);
  for (const id of [a.accountId, other.accountId]) await settleAccountUsage(db, id, { limit: 100, overdraftAllowance: new Money(0) });
  b = makeBrowser(base, { 'x-forwarded-for': `192.0.2.${++lastOctet}` });
  expect(signedIn(await signIn(b, a.email, PASSWORD))).toBe(true);
});
afterAll(async () => {
  await close();
  await db.destroy();
});

const total = (body: string) => /id="total-requests">([^<]*)</.exec(body)?.[1];

describe('usage filters are bounded and validated', () => {
  it.each([
    ['a range over 92 days', `from=2026-01-01&to=2026-06-01`, 'at most 92 days'],
    ['a day that does not exist', `from=2026-02-30&to=2026-03-01`, 'from: must be a day'],
    ['a day that is no day', `to=yesterday`, 'to: must be a day'],
    ['from after to', `from=${today}&to=${yesterday}`, 'must not be after'],
    ['a key that is no id', `key=not-a-key`, 'key: is not a key id'],
    ['a SQL-ish key', `key=${encodeURIComponent("1' OR '1'='1")}`, 'key: is not a key id'],
    ['a repeated parameter', 'key=OWN&key=THEIRS', 'key: give it once'],
    ['an over-long model', `model=${'m'.repeat(201)}`, 'model: give it once'],
    ['a model with control characters', `model=${encodeURIComponent('a\u0000b')}`, 'model: is not a model name'],
    ['a SQL-ish request id', `request=${encodeURIComponent("req' OR '1'='1")}`, 'request: is not a request id'],
    ['a forged cursor', `before=${encodeURIComponent("2026-01-01T00:00:00Z~x' OR 1=1")}`, 'before: is not a position'],
  ])('refuses %s with a clear 400 page, on the page and the CSV', async (_what, query, message) => {
    for (const path of ['/app/usage', '/app/usage.csv']) {
      const r = await b.get(`${path}?${query.replace('OWN', ownKey).replace('THEIRS', theirKey.id)}`);
      expect(r.status, path).toBe(400);
      expect(r.body, path).toContain(message);
      expect(r.body, path).not.toMatch(/at .*\.ts:\d+/);
    }
  });

  it('treats a SQL-ish model as a name that matches nothing', async () => {
    const r = await b.get(`/app/usage?model=${encodeURIComponent("x' OR '1'='1' --")}`);
    expect(r.status).toBe(200);
    expect(total(r.body)).toBe('0');
    expect(r.body).not.toContain(`their-model-${tag}`);
    const csv = await b.get(`/app/usage.csv?model=${encodeURIComponent("x' OR 1=1; DROP TABLE usage_events; --")}`);
    expect(csv.status).toBe(200);
    expect(csv.body.trim().split('\n')).toHaveLength(1);
    expect(Number((await db('usage_events').where({ account_id: a.accountId }).count('* as n').first())?.n)).toBe(2);
  });

  it("shows nothing of another account for its key id, its model or its request: page and CSV", async () => {
    const theirRequest = (await db('usage_events').where({ account_id: other.accountId }).first('request_id')).request_id as string;
    for (const q of [`key=${theirKey.id}`, `model=their-model-${tag}`, `request=${theirRequest}`, `key=${theirKey.id}&model=their-model-${tag}`]) {
      const r = await b.get(`/app/usage?${q}`);
      expect(r.status, q).toBe(200);
      if (!q.startsWith('request=')) expect(total(r.body), q).toBe('0');
      for (const theirs of [theirKey.prefix, `theirs-${tag}`, '7.00', '7.0 ']) expect(r.body, q).not.toContain(theirs);
      expect(r.body, q).not.toContain(`<code>${theirRequest}</code>`);
      const csv = await b.get(`/app/usage.csv?${q}`);
      expect(csv.body, q).not.toContain(theirKey.id);
      expect(csv.body, q).not.toContain(`their-model-${tag}`);
    }
  });

  it('without a session, the page and the CSV send to sign-in', async () => {
    const anon = makeBrowser(base, { 'x-forwarded-for': `192.0.2.${++lastOctet}` });
    for (const path of ['/app/usage', `/app/usage.csv?key=${ownKey}`]) {
      const r = await anon.get(path);
      expect(r.status).toBe(303);
      expect(r.location).toBe('/app/login');
    }
  });
});

describe('usage output is safe', () => {
  it('neutralises a model name that is a spreadsheet formula in the CSV', async () => {
    const csv = await b.get('/app/usage.csv');
    expect(csv.status).toBe(200);
    const lines = csv.body.trim().split('\n');
    expect(lines).toHaveLength(3);
    const line = lines.find((l) => l.includes('HYPERLINK'))!;
    // Quoted, with a leading single quote: a spreadsheet shows it as text.
    expect(line).toContain(`"'=HYPERLINK(""http://evil.example/${tag}"",""x"")"`);
    expect(csv.body).not.toMatch(/(^|,)=/m);
  });

  it('escapes a model name that is markup on the page', async () => {
    const r = await b.get('/app/usage');
    expect(r.status).toBe(200);
    expect(r.body).not.toContain(MARKUP);
    expect(r.body).toContain(`&lt;script&gt;alert(&quot;${tag}&quot;)&lt;/script&gt;`);
  });

  it('shows metadata columns only: no user agent, address or upstream detail, and says no content is stored', async () => {
    const r = await b.get('/app/usage');
    const csv = await b.get('/app/usage.csv');
    for (const body of [r.body, csv.body]) {
      expect(body).not.toContain(SECRET_UA);
      expect(body).not.toContain('203.0.113.77');
      expect(body).not.toContain(`upstream-${tag}`);
    }
    const log = r.body.slice(r.body.indexOf('<div id="requests">'));
    const headers = [...log.slice(0, log.indexOf('</thead>')).matchAll(/<th scope="col">([^<]*)<\/th>/g)].map((m) => m[1]);
    expect(headers).toEqual(['Time (UTC)', 'Request id', 'Model', 'Key', 'Status', 'Tokens in', 'Tokens out', 'Cost', 'Latency (ms)']);
    expect(csv.body.split('\n')[0]).toBe('day,model,key_id,key_name,key_prefix,requests,tokens_in,tokens_out,cost,currency');
    expect(r.body).toContain('MixRoute never stores prompts or completions, so there is no request or response content to show');
  });
});
