import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testConfig, testDb } from '../helpers/env';
import { startFakeUpstream, type FakeUpstream } from '../helpers/fakeUpstream';
import { createCustomer, startTestGateway, UPSTREAM_KEY } from '../helpers/gateway';

/**
 * An attacker floods the gateway with guessed API keys from one address. The
 * gateway must refuse the address after a few failures without looking the
 * keys up, keep serving other addresses, and record the flood as a bounded
 * number of counted security-event rows, not one row per attempt.
 */
const config = testConfig();
const db = testDb(config);
const ATTACKER = '198.51.100.77';
const CUSTOMER_ADDRESS = '198.51.100.78';
const LIMIT = 10;
const ATTEMPTS = 60;
let upstream: FakeUpstream;

beforeAll(async () => {
  upstream = await startFakeUpstream({ apiKey: UPSTREAM_KEY });
});
afterAll(async () => {
  await upstream.close();
  await db.destroy();
});

const guess = () => `mr-${randomBytes(24).toString('base64url')}`;

function call(url: string, key: string, from: string, model = 'gpt-4o') {
  return fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'x-forwarded-for': from },
    body: JSON.stringify({ model, max_tokens: 1, messages: [{ role: 'user', content: 'hi' }] }),
  });
}

describe('a flood of wrong API keys from one address', () => {
  it('is refused with 429 after the limit, other addresses keep working, and the flood is a handful of counted rows', async () => {
    const customer = await createCustomer(db, upstream.url);
    // The gateway sits behind a proxy on loopback, so the client address is X-Forwarded-For's.
    const gw = await startTestGateway(
      { TRUSTED_PROXIES: '127.0.0.1', GATEWAY_AUTH_FAILURES_PER_MIN: String(LIMIT), UPSTREAM_ALLOWED_HOSTS: '127.0.0.1' },
      config,
    );
    // The table is shared by the whole run: only this test's rows count.
    const startedAt = new Date();
    let stopped = false;
    try {
      const answers = await Promise.all(
        Array.from({ length: ATTEMPTS }, async () => {
          const res = await call(gw.url, guess(), ATTACKER);
          return { status: res.status, retryAfter: res.headers.get('retry-after'), body: (await res.json()) as { error: { type: string; code: string } } };
        }),
      );
      const unauthorized = answers.filter((a) => a.status === 401);
      const throttled = answers.filter((a) => a.status === 429);
      // Each 401 is a key that was looked up; every other guess was refused without a lookup.
      expect(unauthorized.length).toBeLessThanOrEqual(LIMIT);
      expect(unauthorized.length + throttled.length).toBe(ATTEMPTS);
      expect(throttled.length).toBeGreaterThanOrEqual(ATTEMPTS - LIMIT);
      for (const t of throttled) {
        expect(Number(t.retryAfter)).toBeGreaterThanOrEqual(1);
        expect(t.body.error).toMatchObject({ code: 'too_many_auth_failures' });
      }
      // Still refused while the bucket refills, whatever the key.
      expect((await call(gw.url, guess(), ATTACKER)).status).toBe(429);

      // A customer at another address is not affected.
      await gw.routing.refresh();
      expect((await call(gw.url, customer.key, CUSTOMER_ADDRESS, customer.model)).status).toBe(200);

      await gw.stop(); // flushes the security events
      stopped = true;
      const rows = await db('security_events').where({ source_ip: ATTACKER }).where('occurred_at', '>=', startedAt).select('kind', 'reason', 'count', 'window_start');
      // One row per kind, reason and window (a window boundary during the burst may double it).
      expect(rows.length).toBeGreaterThanOrEqual(2);
      expect(rows.length).toBeLessThanOrEqual(4);
      expect(rows.reduce((sum, r) => sum + Number(r.count), 0)).toBe(ATTEMPTS + 1);
      expect(rows.map((r) => `${r.kind}/${r.reason}`).sort()).toEqual(expect.arrayContaining(['auth_failed/invalid_key', 'rate_limited/auth_failures']));
    } finally {
      if (!stopped) await gw.stop();
    }
  });

  it('from addresses rotated through one IPv6 /64 is limited as one client and recorded as one client', async () => {
    // A /64 of its own per run (documentation range), so rows of other runs or tests cannot count here.
    // Hextets without leading zeros: PostgreSQL prints an inet's canonical form, which drops them.
    const hextet = () => randomBytes(2).readUInt16BE(0).toString(16);
    const prefix = `2001:db8:${hextet()}:${hextet()}`;
    const ADDRESSES = 20;
    const PER_ADDRESS = 3;
    const gw = await startTestGateway({ TRUSTED_PROXIES: '127.0.0.1', GATEWAY_AUTH_FAILURES_PER_MIN: String(LIMIT) }, config);
    let stopped = false;
    try {
      const statuses = await Promise.all(
        Array.from({ length: ADDRESSES * PER_ADDRESS }, async (_, i) => (await call(gw.url, guess(), `${prefix}::${(i % ADDRESSES) + 1}`)).status),
      );
      expect(statuses.filter((st) => st === 401).length).toBeLessThanOrEqual(LIMIT);
      await gw.stop();
      stopped = true;
      const rows = await db('security_events').whereRaw('source_ip <<= ?::inet', [`${prefix}::/64`]).select('kind', 'reason', 'count', 'source_ip');
      // One row per kind, reason and window, as for one address: not one per address the attacker rotates through.
      expect(rows.length).toBeGreaterThanOrEqual(2);
      expect(rows.length).toBeLessThanOrEqual(4);
      expect(rows.reduce((sum, r) => sum + Number(r.count), 0)).toBe(ADDRESSES * PER_ADDRESS);
      // A row that counts many addresses names their /64, not the first of them.
      expect(rows.filter((r) => Number(r.count) > PER_ADDRESS).map((r) => r.source_ip)).toEqual(expect.arrayContaining([`${prefix}::/64`]));
    } finally {
      if (!stopped) await gw.stop();
    }
  });
});
