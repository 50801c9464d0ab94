import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accountsService } from '../../src/accounts/accounts.service';
import { createAdminApp } from '../../src/admin/app';
import { systemClock } from '../../src/clock';
import { settleAccountUsage } from '../../src/metering/metering.service';
import { Money } from '../../src/shared/money.rules';
import { browser as makeBrowser, customerWithPassword, signedIn, signIn } from '../helpers/customerConsole';
import { silentLogger, testConfig, testDb } from '../helpers/env';
import { serve } from '../helpers/servers';
import { insertUsageEvents } from '../helpers/usageEvents';

/**
 * The customer console's Usage page (/app/usage, issue 26): usage by day,
 * model and key with totals, the filters, the CSV, the request log and its
 * search by request id, all of the session's account only.
 */
const config = testConfig({ TRUSTED_PROXIES: 'loopback' });
const db = testDb(config);
const PASSWORD = 'correct horse battery staple';
let base: string;
let close: () => Promise<void>;
let lastOctet = 0;

const DAY = 86_400_000;
const dayOf = (offset: number) => new Date(Date.now() - offset * DAY).toISOString().slice(0, 10);
const day1 = dayOf(2);
const day2 = dayOf(1);
const at = (day: string, hhmmss: string) => new Date(`${day}T${hhmmss}Z`);

const browser = () => makeBrowser(base, { 'x-forwarded-for': `198.51.100.${++lastOctet}` });
const ops = () => accountsService({ db, clock: systemClock, config });

async function key(accountId: string, userId: string, name: string) {
  const k = await ops().createKey({ accountId, userId, name });
  const row = await db('api_keys').where({ id: k.id }).first('prefix');
  return { id: k.id as string, prefix: row.prefix as string };
}

let a: Awaited<ReturnType<typeof customerWithPassword>>;
let alpha: { id: string; prefix: string };
let beta: { id: string; prefix: string };
let other: Awaited<ReturnType<typeof customerWithPassword>>;
let otherKey: { id: string; prefix: string };
const tag = Math.random().toString(36).slice(2, 8);
const ownRequest = `req-own-${tag}`;
const otherRequest = `req-other-${tag}`;

beforeAll(async () => {
  const app = createAdminApp({ db, billing: config.billing, config, clock: systemClock, logger: silentLogger, readiness: {}, readyCheckTimeoutMs: 1000 });
  ({ url: base, close } = await serve(app));

  a = await customerWithPassword(db, config, PASSWORD, { balance: '100' });
  alpha = await key(a.accountId, a.userId, `alpha-${tag}`);
  beta = await key(a.accountId, a.userId, `beta-${tag}`);
  const ev = (k: { id: string }, model: string, occurred_at: Date, cost: string, request_id?: string) => ({
    account_id: a.accountId,
    api_key_id: k.id,
    model,
    occurred_at,
    cost,
    input_tokens: 10,
    output_tokens: 5,
    ...(request_id ? { request_id } : {}),
  });
  await insertUsageEvents(db, [
    ev(alpha, `model-x-${tag}`, at(day1, '10:00:00'), '0.10', ownRequest),
    ev(alpha, `model-x-${tag}`, at(day1, '11:00:00'), '0.10'),
    ev(beta, `model-y-${tag}`, at(day1, '12:00:00'), '0.20'),
    ev(alpha, `model-y-${tag}`, at(day2, '10:00:00'), '0.30'),
    ev(beta, `model-x-${tag}`, at(day2, '11:00:00'), '0.40'),
  ]);
  await settleAccountUsage(db, a.accountId, { limit: 100, overdraftAllowance: new Money(0) });

  other = await customerWithPassword(db, config, PASSWORD, { balance: '100' });
  otherKey = await key(other.accountId, other.userId, `theirs-${tag}`);
  await insertUsageEvents(db, [
    { account_id: other.accountId, api_key_id: otherKey.id, model: `their-model-${tag}`, occurred_at: at(day1, '10:30:00'), cost: '5.00', request_id: otherRequest },
  ]);
  await settleAccountUsage(db, other.accountId, { limit: 100, overdraftAllowance: new Money(0) });
});
afterAll(async () => {
  await close();
  await db.destroy();
});

async function signedInAs(c: { email: string }) {
  const b = browser();
  expect(signedIn(await signIn(b, c.email, PASSWORD))).toBe(true);
  return b;
}

const span = (body: string, id: string) => new RegExp(`id="${id}">([^<]*)<`).exec(body)?.[1];
const section = (body: string, id: string) => {
  const start = body.indexOf(`<div id="${id}">`);
  expect(start, id).toBeGreaterThan(-1);
  return body.slice(start, body.indexOf('</table>', start));
};

describe('customer console: usage', () => {
  it("shows the account's totals by day, model and key over the default range, and nothing of another account", async () => {
    const b = await signedInAs(a);
    const r = await b.get('/app/usage');
    expect(r.status).toBe(200);
    expect(r.headers.get('cache-control')).toBe('no-store');
    expect(r.body).toContain('href="/app/usage"');
    expect(span(r.body, 'total-requests')).toBe('5');
    expect(span(r.body, 'total-tokens-in')).toBe('50');
    expect(span(r.body, 'total-tokens-out')).toBe('25');
    expect(span(r.body, 'total-cost')).toBe('1.10');
    const byDay = section(r.body, 'by-day');
    expect(byDay).toContain(`<td>${day1}</td><td>3</td><td>30</td><td>15</td><td>0.40</td>`);
    expect(byDay).toContain(`<td>${day2}</td><td>2</td><td>20</td><td>10</td><td>0.70</td>`);
    const byModel = section(r.body, 'by-model');
    expect(byModel).toContain(`<td>model-x-${tag}</td><td>3</td><td>30</td><td>15</td><td>0.60</td>`);
    expect(byModel).toContain(`<td>model-y-${tag}</td><td>2</td><td>20</td><td>10</td><td>0.50</td>`);
    const byKey = section(r.body, 'by-key');
    expect(byKey).toContain(`<td>alpha-${tag} (${alpha.prefix})</td><td>3</td><td>30</td><td>15</td><td>0.50</td>`);
    expect(byKey).toContain(`<td>beta-${tag} (${beta.prefix})</td><td>2</td><td>20</td><td>10</td><td>0.60</td>`);
    const detail = section(r.body, 'by-day-model-key');
    expect(detail).toContain(`<td>${day1}</td><td>model-x-${tag}</td><td>alpha-${tag} (${alpha.prefix})</td><td>2</td>`);
    expect(r.body).toContain('id="spend-chart"');
    // The selects hold the account's own keys and models only.
    expect(r.body).toContain(`<option value="${alpha.id}">`);
    expect(r.body).toContain(`<option value="model-y-${tag}">`);
    for (const theirs of [otherKey.id, otherKey.prefix, `their-model-${tag}`, otherRequest, `theirs-${tag}`]) expect(r.body).not.toContain(theirs);
    expect(r.body).toContain('MixRoute never stores prompts or completions');
  });

  it('filters by model, by key and by range; a key of another account shows nothing of theirs', async () => {
    const b = await signedInAs(a);
    const byModel = await b.get(`/app/usage?model=model-x-${tag}`);
    expect(span(byModel.body, 'total-requests')).toBe('3');
    expect(span(byModel.body, 'total-cost')).toBe('0.60');
    expect(section(byModel.body, 'by-model')).not.toContain(`model-y-${tag}`);
    expect(section(byModel.body, 'requests')).not.toContain(`model-y-${tag}`);
    const byKey = await b.get(`/app/usage?key=${beta.id}`);
    expect(span(byKey.body, 'total-requests')).toBe('2');
    expect(span(byKey.body, 'total-cost')).toBe('0.60');
    expect(byKey.body).toContain(`<option value="${beta.id}" selected>`);
    const both = await b.get(`/app/usage?key=${alpha.id}&model=model-y-${tag}`);
    expect(span(both.body, 'total-requests')).toBe('1');
    expect(span(both.body, 'total-cost')).toBe('0.30');
    const oneDay = await b.get(`/app/usage?from=${day2}&to=${day2}`);
    expect(span(oneDay.body, 'total-requests')).toBe('2');
    expect(section(oneDay.body, 'by-day')).not.toContain(day1);

    const theirKey = await b.get(`/app/usage?key=${otherKey.id}`);
    expect(theirKey.status).toBe(200);
    expect(span(theirKey.body, 'total-requests')).toBe('0');
    for (const theirs of [otherKey.prefix, `their-model-${tag}`, otherRequest, '5.00']) expect(theirKey.body).not.toContain(theirs);
    const theirModel = await b.get(`/app/usage?model=their-model-${tag}`);
    expect(span(theirModel.body, 'total-requests')).toBe('0');
    expect(section(theirModel.body, 'requests')).toContain('None.');
  });

  it('downloads the same figures as CSV with the same filters', async () => {
    const b = await signedInAs(a);
    const r = await b.get('/app/usage.csv');
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/csv/);
    expect(r.headers.get('content-disposition')).toMatch(/^attachment; filename="usage-\d{4}-\d{2}-\d{2}-\d{4}-\d{2}-\d{2}\.csv"$/);
    const lines = r.body.trim().split('\n');
    expect(lines[0]).toBe('day,model,key_id,key_name,key_prefix,requests,tokens_in,tokens_out,cost,currency');
    const rows = lines.slice(1).map((l) => l.split(','));
    expect(rows).toHaveLength(4);
    expect(rows).toContainEqual([day1, `model-x-${tag}`, alpha.id, `alpha-${tag}`, alpha.prefix, '2', '20', '10', '0.2', 'USD']);
    expect(rows.reduce((s, x) => s + Number(x[8]), 0)).toBeCloseTo(1.1, 10);
    expect(rows.reduce((s, x) => s + Number(x[5]), 0)).toBe(5);
    expect(r.body).not.toContain(otherKey.id);

    const filtered = await b.get(`/app/usage.csv?key=${beta.id}&model=model-x-${tag}`);
    const frows = filtered.body.trim().split('\n').slice(1);
    expect(frows).toEqual([`${day2},model-x-${tag},${beta.id},beta-${tag},${beta.prefix},1,10,5,0.4,USD`]);
    const theirs = await b.get(`/app/usage.csv?key=${otherKey.id}`);
    expect(theirs.body.trim().split('\n')).toHaveLength(1);
  });

  it('lists the latest requests with their metadata and finds one by its request id; another account\'s id finds nothing', async () => {
    const b = await signedInAs(a);
    const all = await b.get('/app/usage');
    const log = section(all.body, 'requests');
    expect(log.match(/<code>/g)).toHaveLength(5);
    expect(log.indexOf(`model-x-${tag}</td><td>beta-${tag}`)).toBeLessThan(log.indexOf(`<code>${ownRequest}</code>`)); // newest first

    const found = await b.get(`/app/usage?request=${ownRequest}`);
    const one = section(found.body, 'requests');
    expect(one.match(/<code>/g)).toHaveLength(1);
    expect(one).toContain(
      `<td>${at(day1, '10:00:00').toISOString()}</td><td><code>${ownRequest}</code></td><td>model-x-${tag}</td><td>alpha-${tag} (${alpha.prefix})</td><td>200</td><td>10</td><td>5</td><td>0.1 USD</td><td>1</td>`,
    );
    const theirs = await b.get(`/app/usage?request=${otherRequest}`);
    expect(theirs.status).toBe(200);
    expect(theirs.body).toContain('id="not-found"');
    expect(section(theirs.body, 'requests')).toContain('None.');
    expect(theirs.body).not.toContain(`their-model-${tag}`);
    // The other account's user finds it in their own console.
    const o = await signedInAs(other);
    expect(section((await o.get(`/app/usage?request=${otherRequest}`)).body, 'requests')).toContain(`<code>${otherRequest}</code>`);
  });

  it('pages the request log with a before-cursor: every request once, newest first', async () => {
    const c = await customerWithPassword(db, config, PASSWORD);
    const k = await key(c.accountId, c.userId, 'pager');
    const ids = Array.from({ length: 53 }, (_, i) => `req-page-${tag}-${String(i).padStart(2, '0')}`);
    // Two requests share an instant, so the cursor must order by request id too.
    await insertUsageEvents(db, ids.map((request_id, i) => ({ account_id: c.accountId, api_key_id: k.id, request_id, occurred_at: new Date(at(day2, '00:00:00').getTime() + Math.min(i, 51) * 60_000) })));
    const b = await signedInAs(c);
    const first = await b.get('/app/usage');
    const page1 = [...section(first.body, 'requests').matchAll(/<code>([^<]+)<\/code>/g)].map((m) => m[1]);
    expect(page1).toHaveLength(50);
    const older = /id="older" href="([^"]+)"/.exec(first.body)?.[1]?.replace(/&amp;/g, '&');
    expect(older).toBeDefined();
    const second = await b.get(older!);
    expect(second.status).toBe(200);
    const page2 = [...section(second.body, 'requests').matchAll(/<code>([^<]+)<\/code>/g)].map((m) => m[1]);
    expect(page2).toHaveLength(3);
    expect(second.body).not.toContain('id="older"');
    expect([...page1, ...page2]).toEqual([...ids].reverse());
  });

  it('is open to a member of any role', async () => {
    for (const role of ['owner', 'admin', 'developer', 'billing'] as const) {
      await db('users').where({ id: a.userId }).update({ console_role: role });
      const b = await signedInAs(a);
      const r = await b.get('/app/usage');
      expect(r.status, role).toBe(200);
      expect(r.body, role).toContain('<a href="/app/usage" aria-current="page">Usage</a>');
      expect((await b.get('/app/usage.csv')).status, role).toBe(200);
    }
    await db('users').where({ id: a.userId }).update({ console_role: 'developer' });
  });
});
