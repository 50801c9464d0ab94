import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accountsService } from '../../src/accounts/accounts.service';
import { clientApiService } from '../../src/accounts/clientApi.service';
import { CREDITS_FIELDS, GENERATION_FIELDS, KEY_FIELDS } from '../../src/accounts/clientApi.rules';
import { systemClock } from '../../src/clock';
import { spendable } from '../../src/ledger/ledger.rules';
import { settleAccountUsage, settleShardUsage } from '../../src/metering/metering.service';
import { Money } from '../../src/shared/money.rules';
import { eventually } from '../helpers/eventually';
import { testConfig, testDb } from '../helpers/env';
import { startFakeUpstream, type FakeUpstream } from '../helpers/fakeUpstream';
import { createCustomer, startTestGateway, UPSTREAM_KEY, type Customer } from '../helpers/gateway';
import { insertUsageEvents } from '../helpers/usageEvents';

/**
 * The client read API over HTTP against a real gateway, real PostgreSQL and a
 * fake provider: GET /v1/key, /v1/credits, /v1/generation, /v1/activity.
 */
const config = testConfig();
const db = testDb(config);
let upstream: FakeUpstream;
let gw: Awaited<ReturnType<typeof startTestGateway>>;
let a: Customer;
let b: Customer;
/** A second inference key and a management key of account a. */
let a2: { key: string; keyId: string };
let aAdmin: { key: string; keyId: string };

const ACCOUNT_API_RPM = 200;

async function newKey(accountId: string, userId: string, kind: 'inference' | 'management' = 'inference') {
  const ops = accountsService({ db, clock: systemClock });
  const k = await ops.createKey({ accountId, userId });
  if (kind === 'management') await db('api_keys').where({ id: k.id }).update({ kind });
  return { key: k.key, keyId: k.id };
}

beforeAll(async () => {
  upstream = await startFakeUpstream({ apiKey: UPSTREAM_KEY });
  a = await createCustomer(db, upstream.url);
  b = await createCustomer(db, upstream.url);
  a2 = await newKey(a.accountId, a.userId);
  aAdmin = await newKey(a.accountId, a.userId, 'management');
  // The production batch interval: the 2 s promise of /v1/generation is tested against it.
  gw = await startTestGateway({ METERING_BATCH_MS: '200', GATEWAY_ACCOUNT_API_RPM: String(ACCOUNT_API_RPM) });
});
afterAll(async () => {
  await gw?.stop();
  await upstream?.close();
  await db.destroy();
});

async function get(path: string, key: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${gw.url}${path}`, { headers: { authorization: `Bearer ${key}`, ...headers } });
  const text = await res.text();
  const body = res.headers.get('content-type')?.startsWith('application/json') ? JSON.parse(text) : text;
  return { status: res.status, headers: res.headers, body };
}

async function chat(key: string, model: string, stream = false): Promise<string> {
  const res = await fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }], stream }),
  });
  await res.text();
  expect(res.status).toBe(200);
  return res.headers.get('x-request-id')!;
}

function expectOpenAIError(r: { status: number; body: unknown }, status: number, param?: string) {
  expect(r.status).toBe(status);
  expect(r.body).toMatchObject({ error: { message: expect.any(String), type: expect.any(String) } });
  expect(Object.keys((r.body as { error: object }).error).sort()).toEqual(['code', 'message', 'param', 'type']);
  if (param !== undefined) expect((r.body as { error: { param: string } }).error.param).toBe(param);
}

/** Settles the account through the shard pass (the worker's path) and flushes the gateway's metering first. */
async function settle(accountId: string) {
  await gw.batcher.flush();
  await settleShardUsage(db, { shard: 0, shards: 1, accounts: [accountId], limit: 5000 });
}

describe('GET /v1/key', () => {
  it('describes the calling key, and counts settled spend in its window and its life', async () => {
    const fresh = await get('/v1/key', a.key);
    expect(fresh.status).toBe(200);
    expect(fresh.headers.get('cache-control')).toBe('no-store');
    expect(fresh.body.data).toMatchObject({
      id: a.keyId,
      kind: 'inference',
      is_provisioning_key: false,
      limit: null,
      limit_reset: null,
      limit_remaining: null,
      usage: '0',
      usage_lifetime: '0',
      window_start: null,
      next_reset: null,
      currency: 'USD',
      rate_limit: { requests: null, interval: '1m' },
    });
    const row = await db('api_keys').where({ id: a.keyId }).first();
    expect(fresh.body.data.label).toBe(row.prefix);
    expect(fresh.body.data.prefix).toBe(row.prefix);
    expect(fresh.body.data.created_at).toBe(new Date(row.created_at).toISOString());

    await db('api_keys').where({ id: a.keyId }).update({ spend_limit: '5', limit_window: 'daily', name: 'ci key', rate_limit_rpm: 600 });
    await chat(a.key, a.model);
    await settle(a.accountId);
    const after = await get('/v1/key', a.key);
    const spent = await db('usage_events').where({ api_key_id: a.keyId }).sum('cost as c').first();
    expect(new Money(after.body.data.usage).eq(spent!.c)).toBe(true);
    expect(new Money(after.body.data.usage).gt(0)).toBe(true);
    expect(after.body.data).toMatchObject({ name: 'ci key', limit: '5', limit_reset: 'daily', rate_limit: { requests: 600, interval: '1m' } });
    expect(new Money(after.body.data.limit_remaining).eq(new Money(5).minus(after.body.data.usage))).toBe(true);
    expect(after.body.data.usage_lifetime).toBe(after.body.data.usage);
    // A daily window runs from today's UTC midnight to the next.
    const start = new Date(after.body.data.window_start);
    expect(start.toISOString().slice(11)).toBe('00:00:00.000Z');
    expect(new Date(after.body.data.next_reset).getTime() - start.getTime()).toBe(86_400_000);
    // The other key of the account spent nothing.
    expect((await get('/v1/key', a2.key)).body.data).toMatchObject({ id: a2.keyId, usage: '0' });
  });

  it('documents every field it answers with, and answers with every documented field', async () => {
    const r = await get('/v1/key', aAdmin.key);
    expect(Object.keys(r.body.data).sort()).toEqual(KEY_FIELDS.map((f) => f.name).sort());
    expect(r.body.data).toMatchObject({ kind: 'management', is_provisioning_key: true });
  });

  it('is not metered as model usage', async () => {
    const r = await get('/v1/key', a2.key);
    const requestId = r.headers.get('x-request-id')!;
    expect(requestId).toMatch(/^req-/);
    await gw.batcher.flush();
    expect(await db('usage_events').where({ request_id: requestId }).first()).toBeUndefined();
  });

  it('refuses a missing or unknown key in OpenAI’s shape', async () => {
    const res = await fetch(`${gw.url}/v1/key`);
    expectOpenAIError({ status: res.status, body: await res.json() }, 401);
    expectOpenAIError(await get('/v1/key', 'mr-not-a-key'), 401);
  });
});

describe('window spend with an injected clock', () => {
  it('counts only the current UTC calendar window, and all of it in the key’s life', async () => {
    const c = await createCustomer(db, upstream.url);
    await db('api_keys').where({ id: c.keyId }).update({ spend_limit: '1', limit_window: 'monthly' });
    // Sunday 31 March 23:59:59 and Monday 1 April 00:00 (UTC): two months, two ISO weeks.
    await insertUsageEvents(db, [
      { account_id: c.accountId, api_key_id: c.keyId, occurred_at: '2030-03-31T23:59:59.999Z', model: c.model, cost: '0.25' },
      { account_id: c.accountId, api_key_id: c.keyId, occurred_at: '2030-04-01T00:00:00.000Z', model: c.model, cost: '0.5' },
    ]);
    await settleAccountUsage(db, c.accountId, { limit: 100, overdraftAllowance: new Money(0) });
    const at = (iso: string) => clientApiService({ db, clock: { now: () => new Date(iso) }, spendable: (i) => spendable({ ...i, overdraftAllowance: new Money(0) }) });
    const caller = { accountId: c.accountId, apiKeyId: c.keyId, kind: 'inference' as const };

    const april = await at('2030-04-01T12:00:00Z').describeKey(caller);
    expect(april).toMatchObject({
      usage: '0.5',
      usage_daily: '0.5',
      usage_weekly: '0.5',
      usage_monthly: '0.5',
      usage_lifetime: '0.75',
      limit_remaining: '0.5',
      window_start: '2030-04-01T00:00:00.000Z',
      next_reset: '2030-05-01T00:00:00.000Z',
    });
    // The last instant of March: April's spend is in the key's life but not in March's window.
    expect(await at('2030-03-31T23:59:59.999Z').describeKey(caller)).toMatchObject({
      usage: '0.25',
      usage_daily: '0.25',
      usage_weekly: '0.25',
      usage_lifetime: '0.75',
      window_start: '2030-03-01T00:00:00.000Z',
      next_reset: '2030-04-01T00:00:00.000Z',
    });
    // The ISO week of Monday 1 April, read on its last second: Sunday 31 March is the week before.
    await db('api_keys').where({ id: c.keyId }).update({ limit_window: 'weekly' });
    const weekly = await at('2030-04-07T23:59:59Z').describeKey(caller);
    expect(weekly).toMatchObject({ usage: '0.5', window_start: '2030-04-01T00:00:00.000Z', next_reset: '2030-04-08T00:00:00.000Z' });
    // Spent beyond the limit: nothing remains, never a negative amount.
    await db('api_keys').where({ id: c.keyId }).update({ spend_limit: '0.1', limit_window: null });
    expect(await at('2030-04-07T23:59:59Z').describeKey(caller)).toMatchObject({ usage: '0.75', limit_remaining: '0', window_start: null, next_reset: null });
  });
});

describe('GET /v1/credits', () => {
  it('reports balance, held and spendable by the ledger’s rule', async () => {
    const r = await get('/v1/credits', a2.key);
    expect(r.status).toBe(200);
    expect(Object.keys(r.body.data).sort()).toEqual(CREDITS_FIELDS.map((f) => f.name).sort());
    const bal = await db('account_balances').where({ account_id: a.accountId }).first();
    expect(new Money(r.body.data.balance).eq(bal.balance)).toBe(true);
    expect(new Money(r.body.data.held).eq(bal.held)).toBe(true);
    expect(new Money(r.body.data.spendable).eq(new Money(bal.balance).minus(bal.held))).toBe(true);
    expect(r.body.data).toMatchObject({ plan: 'prepaid', credit_limit: '0', currency: 'USD' });
    // The earlier request was settled: the balance is below the 100 granted.
    expect(new Money(r.body.data.balance).lt(100)).toBe(true);
  });

  it('adds a postpaid account’s credit limit to what it may spend', async () => {
    const p = await createCustomer(db, upstream.url, { plan: 'postpaid', creditLimit: '250', credit: '0' });
    const r = await get('/v1/credits', p.key);
    expect(r.body.data).toMatchObject({ plan: 'postpaid', balance: '0', held: '0', credit_limit: '250', spendable: '250' });
  });
});

describe('GET /v1/generation', () => {
  it('finds a request within 2 s of its answer, with its tokens, cost and latency', async () => {
    const requestId = await chat(a2.key, a.model);
    const r = await eventually(
      async () => {
        const got = await get(`/v1/generation?id=${requestId}`, a2.key);
        expect(got.status).toBe(200);
        return got;
      },
      { timeoutMs: 2_000, message: 'the request to be readable by its id' },
    );
    expect(Object.keys(r.body.data).sort()).toEqual(GENERATION_FIELDS.map((f) => f.name).sort());
    expect(r.body.data).toMatchObject({
      id: requestId,
      api_key_id: a2.keyId,
      endpoint: 'chat.completions',
      model: a.model,
      provider_name: a.provider,
      status: 200,
      error: null,
      streamed: false,
      tokens_prompt: 11,
      tokens_completion: 7,
      native_tokens_reasoning: 0,
      usage: { input_tokens: 11, cache_read_tokens: 0, cache_write_tokens: 0, output_tokens: 7, reasoning_tokens: 0 },
      usage_estimated: false,
      // 11 x 2.5/M + 7 x 10/M
      total_cost: '0.0000975',
      currency: 'USD',
      settled: false,
    });
    expect(Number.isInteger(r.body.data.latency)).toBe(true);
    // The management key reads any request of its account; settling flips `settled`.
    await settle(a.accountId);
    expect((await get(`/v1/generation?id=${requestId}`, aAdmin.key)).body.data).toMatchObject({ id: requestId, settled: true });
  });

  it('reports a streamed request as streamed', async () => {
    const requestId = await chat(a.key, a.model, true);
    await gw.batcher.flush();
    expect((await get(`/v1/generation?id=${requestId}`, a.key)).body.data).toMatchObject({ streamed: true, status: 200 });
  });

  it('answers 404 for another account’s request and, to an inference key, for another key’s', async () => {
    const requestId = await chat(a.key, a.model);
    await gw.batcher.flush();
    const other = await get(`/v1/generation?id=${requestId}`, b.key);
    expectOpenAIError(other, 404);
    expect(other.body.error.code).toBe('generation_not_found');
    expectOpenAIError(await get(`/v1/generation?id=${requestId}`, a2.key), 404);
    // Indistinguishable from an id that never existed.
    const unknown = await get(`/v1/generation?id=req-00000000-0000-0000-0000-000000000000`, b.key);
    expect(unknown.body.error.message.replace(/req-\S+/, '')).toBe(other.body.error.message.replace(/req-\S+/, ''));
    expect((await get(`/v1/generation?id=${requestId}`, aAdmin.key)).status).toBe(200);
  });

  it('refuses a missing, malformed or repeated id with 400', async () => {
    const missing = await get('/v1/generation', a.key);
    expectOpenAIError(missing, 400, 'id');
    expect(missing.body.error.code).toBe('invalid_input');
    expectOpenAIError(await get('/v1/generation?id=', a.key), 400, 'id');
    expectOpenAIError(await get(`/v1/generation?id=${'x'.repeat(101)}`, a.key), 400, 'id');
    expectOpenAIError(await get(`/v1/generation?id=req-1'%20OR%201=1`, a.key), 400, 'id');
    expectOpenAIError(await get('/v1/generation?id=a&id=b', a.key), 400, 'id');
  });
});

describe('GET /v1/activity', () => {
  let act: Customer;
  let actKey2: { key: string; keyId: string };
  let actAdmin: { key: string; keyId: string };
  const days = ['2031-01-01', '2031-01-02', '2031-01-03'];

  beforeAll(async () => {
    act = await createCustomer(db, upstream.url);
    actKey2 = await newKey(act.accountId, act.userId);
    actAdmin = await newKey(act.accountId, act.userId, 'management');
    // Per day: 2 requests of key 1 on the model, 1 of key 2 on the model, 1 of key 1 on another model.
    const rows = days.flatMap((d) => [
      { account_id: act.accountId, api_key_id: act.keyId, occurred_at: `${d}T01:00:00Z`, model: act.model, cost: '0.01', input_tokens: 100, output_tokens: 10 },
      { account_id: act.accountId, api_key_id: act.keyId, occurred_at: `${d}T23:59:59Z`, model: act.model, cost: '0.02', input_tokens: 200, output_tokens: 20, cache_read_tokens: 5 },
      { account_id: act.accountId, api_key_id: actKey2.keyId, occurred_at: `${d}T12:00:00Z`, model: act.model, cost: '0.04', input_tokens: 400, output_tokens: 40 },
      { account_id: act.accountId, api_key_id: act.keyId, occurred_at: `${d}T12:00:00Z`, model: 'other-model', cost: '0.08', input_tokens: 800, output_tokens: 80, reasoning_tokens: 30 },
    ]);
    // Half through the per-account path, half through the shard pass: both fill the daily aggregate.
    await insertUsageEvents(db, rows.slice(0, 6));
    await settleAccountUsage(db, act.accountId, { limit: 100, overdraftAllowance: new Money(0) });
    await insertUsageEvents(db, rows.slice(6));
    await settleShardUsage(db, { shard: 0, shards: 1, accounts: [act.accountId], limit: 5000 });
  });

  const q = (params: string) => `/v1/activity?from=${days[0]}&to=${days[2]}&${params}`;

  it('agrees with the hourly aggregate and with the events, and a repeated settlement changes nothing', async () => {
    const sums = async (table: string) =>
      db(table).where({ account_id: act.accountId }).select(db.raw('sum(requests)::int AS n'), db.raw('sum(cost)::text AS c'), db.raw('sum(input_tokens)::int AS i')).first();
    expect(await sums('usage_daily_keys')).toEqual(await sums('usage_hourly'));
    expect(await sums('usage_daily_keys')).toEqual({ n: 12, c: '0.450000000000', i: 4500 });
    await settleAccountUsage(db, act.accountId, { limit: 100, overdraftAllowance: new Money(0) });
    await settleShardUsage(db, { shard: 0, shards: 1, accounts: [act.accountId], limit: 5000 });
    expect(await sums('usage_daily_keys')).toEqual({ n: 12, c: '0.450000000000', i: 4500 });
  });

  it('groups per UTC day, model and key for a management key', async () => {
    const r = await get(q('group_by=day,model,key'), actAdmin.key);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ from: days[0], to: days[2], group_by: ['day', 'model', 'key'], has_more: false, next_cursor: null });
    expect(r.body.data).toHaveLength(9);
    const first = r.body.data.find((x: { date: string; model: string; api_key_id: string }) => x.date === days[0] && x.model === act.model && x.api_key_id === act.keyId);
    expect(first).toEqual({
      date: days[0],
      model: act.model,
      api_key_id: act.keyId,
      requests: 2,
      prompt_tokens: 305,
      completion_tokens: 30,
      reasoning_tokens: 0,
      input_tokens: 300,
      cache_read_tokens: 5,
      cache_write_tokens: 0,
      output_tokens: 30,
      usage: '0.03',
    });
    // Sorted by day, model, key.
    const keys = r.body.data.map((x: { date: string; model: string; api_key_id: string }) => [x.date, x.model, x.api_key_id].join('|'));
    expect(keys).toEqual([...keys].sort());
  });

  it('sums over the dimensions not grouped by', async () => {
    const byModel = await get(q('group_by=model'), actAdmin.key);
    expect(byModel.body.data.map((x: { model: string; usage: string; requests: number }) => [x.model, x.usage, x.requests])).toEqual(
      [
        [act.model, '0.21', 9],
        ['other-model', '0.24', 3],
      ].sort((x, y) => String(x[0]).localeCompare(String(y[0]), 'en')),
    );
    expect(byModel.body.data[0]).not.toHaveProperty('date');
    const byDay = await get(q('group_by=day'), actAdmin.key);
    expect(byDay.body.data.map((x: { date: string; usage: string }) => [x.date, x.usage])).toEqual(days.map((d) => [d, '0.15']));
    // Default grouping: all three dimensions.
    expect((await get(q(''), actAdmin.key)).body.group_by).toEqual(['day', 'model', 'key']);
  });

  it('shows an inference key only its own rows', async () => {
    const own = await get(q('group_by=key'), actKey2.key);
    expect(own.body.data).toEqual([expect.objectContaining({ api_key_id: actKey2.keyId, requests: 3, usage: '0.12' })]);
    const all = await get(q('group_by=key'), actAdmin.key);
    expect(all.body.data.map((x: { api_key_id: string }) => x.api_key_id).sort()).toEqual([act.keyId, actKey2.keyId].sort());
  });

  it('pages with limit and cursor, each row once', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const r: { status: number; body: { data: { date: string; model: string; api_key_id: string }[]; next_cursor: string | null; has_more: boolean } } = await get(
        q(`limit=4${cursor ? `&cursor=${cursor}` : ''}`),
        actAdmin.key,
      );
      expect(r.status).toBe(200);
      expect(r.body.data.length).toBeLessThanOrEqual(4);
      expect(r.body.has_more).toBe(r.body.next_cursor !== null);
      seen.push(...r.body.data.map((x) => `${x.date}|${x.model}|${x.api_key_id}`));
      cursor = r.body.next_cursor;
      pages++;
    } while (cursor && pages < 10);
    expect(pages).toBe(3);
    expect(seen).toHaveLength(9);
    expect(new Set(seen).size).toBe(9);
    // A cursor of one grouping is refused by another.
    const first = await get(q('limit=1'), actAdmin.key);
    expectOpenAIError(await get(q(`group_by=day&cursor=${first.body.next_cursor}`), actAdmin.key), 400, 'cursor');
    expectOpenAIError(await get(q('cursor=not-a-cursor'), actAdmin.key), 400, 'cursor');
  });

  it('answers as CSV when asked, with the cursor in a header', async () => {
    const r = await get(q('group_by=day,model&limit=4'), actAdmin.key, { accept: 'text/csv' });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/csv/);
    const lines = (r.body as string).trimEnd().split('\r\n');
    expect(lines[0]).toBe('date,model,requests,prompt_tokens,completion_tokens,reasoning_tokens,input_tokens,cache_read_tokens,cache_write_tokens,output_tokens,usage');
    expect(lines).toHaveLength(5);
    expect(lines.slice(1, 3).sort()).toEqual([`${days[0]},${act.model},3,705,70,0,700,5,0,70,0.07`, `${days[0]},other-model,1,800,80,30,800,0,0,80,0.08`].sort());
    expect(r.headers.get('x-has-more')).toBe('true');
    const next = await get(q(`group_by=day,model&limit=4&cursor=${r.headers.get('x-next-cursor')}`), actAdmin.key, { accept: 'text/csv' });
    expect((next.body as string).trimEnd().split('\r\n')).toHaveLength(3);
    expect(next.headers.get('x-next-cursor')).toBeNull();
  });

  it('accepts 366 days and refuses 367, bad dates, reversed ranges and unknown dimensions with 400', async () => {
    expect((await get('/v1/activity?from=2031-01-01&to=2032-01-01', actAdmin.key)).status).toBe(200);
    const tooLong = await get('/v1/activity?from=2031-01-01&to=2032-01-02', actAdmin.key);
    expectOpenAIError(tooLong, 400, 'to');
    expect(tooLong.body.error.message).toContain('366');
    expectOpenAIError(await get('/v1/activity?from=2031-02-30', actAdmin.key), 400, 'from');
    expectOpenAIError(await get('/v1/activity?from=2031-01-01T00:00:00Z', actAdmin.key), 400, 'from');
    expectOpenAIError(await get('/v1/activity?to=yesterday', actAdmin.key), 400, 'to');
    expectOpenAIError(await get('/v1/activity?from=2031-01-03&to=2031-01-01', actAdmin.key), 400, 'from');
    expectOpenAIError(await get(q('group_by=day,provider'), actAdmin.key), 400, 'group_by');
    expectOpenAIError(await get(q('group_by=day,day'), actAdmin.key), 400, 'group_by');
    expectOpenAIError(await get(q('group_by='), actAdmin.key), 400, 'group_by');
    expectOpenAIError(await get(q('limit=0'), actAdmin.key), 400, 'limit');
    expectOpenAIError(await get(q('limit=1001'), actAdmin.key), 400, 'limit');
    expectOpenAIError(await get(q('limit=1.5'), actAdmin.key), 400, 'limit');
  });
});

describe('bounds and documentation', () => {
  it('bounds account API requests per key and minute, apart from model calls', async () => {
    const k = await newKey(b.accountId, b.userId);
    let refused: Awaited<ReturnType<typeof get>> | null = null;
    // The bucket refills while we ask (continuously, rpm per minute), so ask until refused, within a bound.
    for (let i = 0; i < 3 * ACCOUNT_API_RPM && !refused; i++) {
      const r = await get('/v1/credits', k.key);
      if (r.status !== 200) refused = r;
    }
    expect(refused).not.toBeNull();
    expectOpenAIError(refused!, 429);
    expect(refused!.body.error.code).toBe('rate_limit_exceeded');
    expect(Number(refused!.headers.get('retry-after'))).toBeGreaterThan(0);
    // Model calls of the same key have their own budget.
    await chat(k.key, b.model);
  });

  it('serves an OpenAPI document listing every endpoint and field', async () => {
    const res = await fetch(`${gw.url}/v1/openapi.json`);
    expect(res.status).toBe(200);
    const doc = (await res.json()) as { paths: Record<string, { get: { responses: { '200': { content: Record<string, { schema: Record<string, unknown> }> } } } }> };
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/v1/key', '/v1/credits', '/v1/generation', '/v1/activity']));
    const dataProps = (p: string) =>
      Object.keys((doc.paths[p]!.get.responses['200'].content['application/json']!.schema as { properties: { data: { properties: object } } }).properties.data.properties);
    expect(dataProps('/v1/key').sort()).toEqual(KEY_FIELDS.map((f) => f.name).sort());
    expect(dataProps('/v1/generation').sort()).toEqual(GENERATION_FIELDS.map((f) => f.name).sort());
    expect(doc.paths['/v1/activity']!.get.responses['200'].content).toHaveProperty('text/csv');
  });
});
