import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Money } from '../../src/shared/money.rules';
import { testConfig, testDb } from '../helpers/env';
import { eventually } from '../helpers/eventually';
import { startFakeUpstream, type FakeUpstream } from '../helpers/fakeUpstream';
import { createCustomer, UPSTREAM_KEY } from '../helpers/gateway';
import { limitKey, settledSpend, startLimitGateway } from '../helpers/spendLimits';

/**
 * A key holder tries to spend past the key's spend limit: bursts of parallel
 * requests, one request bigger than the room left, streams that stay open or
 * whose provider reports no usage, and a limit switched to another window in
 * the middle of one. The account always has plenty of credit: only the key's
 * limit stands in the way.
 *
 * Prices: input free, every output token 1.00, so a reservation is exactly
 * the number of output tokens it covers.
 */
const config = testConfig();
const db = testDb(config);
const PRICES = { input: '0', output: '1000000' };
let upstream: FakeUpstream;

beforeAll(async () => {
  upstream = await startFakeUpstream({ apiKey: UPSTREAM_KEY });
  upstream.setDefault({ kind: 'ok', completionTokens: 1, promptTokens: 5, honorMaxTokens: true });
});
const startGateway = (overrides: Record<string, string> = {}, clock?: { now(): Date }) => startLimitGateway(config, overrides, clock);

afterAll(async () => {
  await upstream.close();
  await db.destroy();
});

const post = (url: string, key: string, body: Record<string, unknown>, signal?: AbortSignal) =>
  fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ max_tokens: 1, messages: [{ role: 'user', content: 'one token please' }], ...body }),
    ...(signal ? { signal } : {}),
  });

const codeOf = async (res: Response) => ((await res.json()) as { error: { code: string } }).error.code;

describe('a key cannot spend past its limit', () => {
  it('a burst of 40 parallel requests against a 3.00 limit gets exactly 3 through, though a slice could hold far more', async () => {
    const c = await createCustomer(db, upstream.url, { prices: PRICES, credit: '100' });
    await limitKey(db, c.keyId, '3', 'daily');
    const gw = await startGateway({ GATEWAY_HOLD_SLICE: '50' });
    try {
      const burst = await Promise.all(Array.from({ length: 40 }, () => post(gw.url, c.key, { model: c.model }).then((r) => r.status)));
      expect(burst.filter((s) => s === 200)).toHaveLength(3);
      expect(burst.filter((s) => s === 403)).toHaveLength(37);
      // The key's holds never reserved more than its limit.
      const held = await db('balance_holds').where({ api_key_id: c.keyId }).sum({ s: 'amount' }).first();
      expect(new Money(held!.s).lte(3)).toBe(true);
    } finally {
      await gw.stop();
    }
  });

  it('one request whose reservation is larger than the room left is refused before it reaches the provider', async () => {
    const c = await createCustomer(db, upstream.url, { prices: PRICES, credit: '100' });
    await limitKey(db, c.keyId, '5', 'monthly');
    const gw = await startGateway();
    try {
      const before = upstream.requests.length;
      // Eight choices of one token each reserve 8.00.
      const res = await post(gw.url, c.key, { model: c.model, n: 8 });
      expect(res.status).toBe(403);
      expect(await codeOf(res)).toBe('key_spend_limit_exceeded');
      expect(upstream.requests.length).toBe(before);
    } finally {
      await gw.stop();
    }
  });

  it('streams held open keep their reservations: no request starts beyond the limit until they end', async () => {
    const c = await createCustomer(db, upstream.url, { prices: PRICES, credit: '100' });
    await limitKey(db, c.keyId, '3', 'daily');
    const gw = await startGateway({ GATEWAY_HOLD_SLICE: '10' });
    const aborts = [new AbortController(), new AbortController(), new AbortController()];
    try {
      const seen = upstream.requests.length;
      upstream.enqueue({ kind: 'hang' }, { kind: 'hang' }, { kind: 'hang' });
      const open = aborts.map((a) => post(gw.url, c.key, { model: c.model, stream: true }, a.signal).catch(() => null));
      await upstream.waitForRequests(seen + 3);
      const extra = await post(gw.url, c.key, { model: c.model, stream: true });
      expect(extra.status).toBe(403);
      expect(await codeOf(extra)).toBe('key_spend_limit_exceeded');

      // The clients give up; nothing was generated, so nothing is charged and the room comes back.
      for (const a of aborts) a.abort();
      await Promise.all(open);
      await upstream.waitForAborted(3);
      await eventually(async () => expect((await post(gw.url, c.key, { model: c.model })).status).toBe(200), { timeoutMs: 10_000, intervalMs: 200, message: 'the aborted streams to give their reservations back' });
    } finally {
      await gw.stop();
    }
  });

  it('streams whose provider reports no usage are charged by the estimate and still stop at the limit', async () => {
    const c = await createCustomer(db, upstream.url, { prices: PRICES, credit: '100' });
    await limitKey(db, c.keyId, '2', 'daily');
    upstream.setDefault({ kind: 'ok', usage: 'none', content: 'Hi', chunks: 1, completionTokens: 1, promptTokens: 5, honorMaxTokens: true });
    const gw = await startGateway({ GATEWAY_HOLD_SLICE: '10' });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) {
        const res = await post(gw.url, c.key, { model: c.model, stream: true });
        statuses.push(res.status);
        await res.text();
      }
      expect(statuses).toEqual([200, 200, 403, 403]);
      await gw.batcher.flush();
      const rows = await db('usage_events').where({ api_key_id: c.keyId, status_code: 200 }).select('usage_estimated', 'cost');
      expect(rows).toHaveLength(2);
      for (const r of rows) {
        expect(r.usage_estimated).toBe(true);
        expect(new Money(r.cost).gt(0)).toBe(true);
      }
      const total = rows.reduce((s, r) => s.plus(r.cost), new Money(0));
      expect(total.lte(2)).toBe(true);
    } finally {
      upstream.setDefault({ kind: 'ok', completionTokens: 1, promptTokens: 5, honorMaxTokens: true });
      await gw.stop();
    }
  });

  it('a limit moved from a daily to a monthly window mid-window counts the month at once, not the slice left from the day', async () => {
    const clock = { now: () => new Date('2031-05-15T12:00:00Z') };
    const c = await createCustomer(db, upstream.url, { prices: PRICES, credit: '100' });
    await limitKey(db, c.keyId, '5', 'daily');
    await settledSpend(db, c, '2031-05-15', '1');
    await settledSpend(db, c, '2031-05-02', '10');
    // No key cache, so the change is seen at the next request (with the default cache, within 2 s).
    const gw = await startGateway({ GATEWAY_HOLD_SLICE: '3', GATEWAY_KEY_CACHE_MS: '0' }, clock);
    try {
      // Daily: 1.00 spent today, a slice of 3.00 taken, 1.00 of it used.
      expect((await post(gw.url, c.key, { model: c.model })).status).toBe(200);
      // The manager (PATCH /v1/keys/:id writes the same columns) moves the limit to the month: 11.00 spent.
      await limitKey(db, c.keyId, '5', 'monthly');
      const res = await post(gw.url, c.key, { model: c.model });
      expect(res.status).toBe(403);
      expect(res.headers.get('x-ratelimit-reset-spend')).toBe('2031-06-01T00:00:00.000Z');
      // Back to daily: the day's slice was retired; today's 1.00 + 1.00 still held by the first request leave room.
      await limitKey(db, c.keyId, '5', 'daily');
      await eventually(async () => expect((await post(gw.url, c.key, { model: c.model })).status).toBe(200), { timeoutMs: 5_000, intervalMs: 200, message: 'the daily window to apply again' });
    } finally {
      await gw.stop();
    }
  });
});
