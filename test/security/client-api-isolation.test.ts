import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accountsService } from '../../src/accounts/accounts.service';
import { encodeActivityCursor } from '../../src/accounts/clientApi.rules';
import { systemClock } from '../../src/clock';
import { settleShardUsage } from '../../src/metering/metering.service';
import { testConfig, testDb } from '../helpers/env';
import { startFakeUpstream, type FakeUpstream } from '../helpers/fakeUpstream';
import { createCustomer, startTestGateway, UPSTREAM_KEY, type Customer } from '../helpers/gateway';
import { insertUsageEvents } from '../helpers/usageEvents';

/**
 * The attacker holds valid keys of their own account (an inference key and a
 * management key) and knows the victim's key id, request ids and model. Nothing
 * of the victim's account may come back from the client read API, whatever the
 * attacker puts in the query or the cursor.
 */
const db = testDb(testConfig());
let upstream: FakeUpstream;
let gw: Awaited<ReturnType<typeof startTestGateway>>;
let victim: Customer;
let attacker: Customer;
let attackerAdmin: string;
let victimRequest: string;
const DAY = '2032-06-15';

beforeAll(async () => {
  upstream = await startFakeUpstream({ apiKey: UPSTREAM_KEY });
  victim = await createCustomer(db, upstream.url, { credit: '7654.321' });
  attacker = await createCustomer(db, upstream.url, { credit: '1' });
  const k = await accountsService({ db, clock: systemClock }).createKey({ accountId: attacker.accountId, userId: attacker.userId });
  await db('api_keys').where({ id: k.id }).update({ kind: 'management' });
  attackerAdmin = k.key;
  await db('api_keys').where({ id: victim.keyId }).update({ spend_limit: '9', limit_window: 'monthly', name: 'victim key' });
  gw = await startTestGateway();

  const res = await fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${victim.key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: victim.model, messages: [{ role: 'user', content: 'hi' }] }),
  });
  await res.text();
  victimRequest = res.headers.get('x-request-id')!;
  await insertUsageEvents(db, [{ account_id: victim.accountId, api_key_id: victim.keyId, occurred_at: `${DAY}T10:00:00Z`, model: victim.model, cost: '3' }]);
  await gw.batcher.flush();
  await settleShardUsage(db, { shard: 0, shards: 1, accounts: [victim.accountId, attacker.accountId], limit: 5000 });
});
afterAll(async () => {
  await gw?.stop();
  await upstream?.close();
  await db.destroy();
});

async function get(path: string, key: string) {
  const res = await fetch(`${gw.url}${path}`, { headers: { authorization: `Bearer ${key}` } });
  return { status: res.status, text: await res.text() };
}

/** No trace of the victim: its ids, its key's name, its model or its balance (7651.32…, after its spend). */
function expectNoVictim(text: string) {
  for (const secret of [victim.accountId, victim.keyId, victimRequest, victim.model, 'victim key', '7651.']) expect(text).not.toContain(secret);
}

describe('an attacker with keys of another account', () => {
  it('reads only their own key, whatever they put in the query', async () => {
    for (const key of [attacker.key, attackerAdmin]) {
      const r = await get(`/v1/key?id=${victim.keyId}&api_key_id=${victim.keyId}&account_id=${victim.accountId}`, key);
      expect(r.status).toBe(200);
      expectNoVictim(r.text);
    }
  });

  it('reads only their own credits', async () => {
    const r = await get(`/v1/credits?account_id=${victim.accountId}`, attackerAdmin);
    expect(r.status).toBe(200);
    // The victim's own view: 7654.321 granted, 3 and one request spent.
    expect(JSON.parse((await get('/v1/credits', victim.key)).text).data.balance).toMatch(/^7651\./);
    expectNoVictim(r.text);
  });

  it('gets 404 for the victim’s request id, exactly as for an unknown one', async () => {
    const unknown = await get('/v1/generation?id=req-00000000-0000-0000-0000-000000000000', attackerAdmin);
    for (const key of [attacker.key, attackerAdmin]) {
      const r = await get(`/v1/generation?id=${victimRequest}`, key);
      expect(r.status).toBe(404);
      expect(r.text.replace(victimRequest, 'ID')).toBe(unknown.text.replace('req-00000000-0000-0000-0000-000000000000', 'ID'));
    }
    // The victim can read it: the 404 is the attacker's, not a missing row.
    expect((await get(`/v1/generation?id=${victimRequest}`, victim.key)).status).toBe(200);
  });

  it('sees no activity of the victim, even with a cursor forged from the victim’s key id', async () => {
    const range = `from=${DAY}&to=${DAY}`;
    const victimView = await get(`/v1/activity?${range}&group_by=key`, victim.key);
    expect(victimView.text).toContain(victim.keyId);
    for (const key of [attacker.key, attackerAdmin]) {
      for (const group of ['day,model,key', 'key', 'model', 'day']) {
        const r = await get(`/v1/activity?${range}&group_by=${group}`, key);
        expect(r.status).toBe(200);
        expect(JSON.parse(r.text).data).toEqual([]);
      }
      // A cursor is only a lower bound on the caller's own rows: one naming the victim's key below theirs finds nothing else.
      const forged = encodeActivityCursor(['key'], ['00000000-0000-0000-0000-000000000000']);
      const r = await get(`/v1/activity?${range}&group_by=key&cursor=${forged}`, key);
      expect(r.status).toBe(200);
      expectNoVictim(r.text);
      // Cursor values are bound parameters, never SQL.
      const sqlish = encodeActivityCursor(['day', 'model', 'key'], [DAY, "x') OR true --", victim.keyId]);
      const s = await get(`/v1/activity?${range}&cursor=${sqlish}`, key);
      expect(s.status).toBe(200);
      expect(JSON.parse(s.text).data).toEqual([]);
    }
  });

  it('cannot smuggle SQL or oversized input through the query', async () => {
    const attempts = [
      `/v1/activity?group_by=${encodeURIComponent("day,model) UNION SELECT account_id FROM accounts --")}`,
      `/v1/activity?from=${encodeURIComponent("2032-01-01' OR '1'='1")}`,
      `/v1/activity?cursor=${'A'.repeat(5000)}`,
      `/v1/generation?id=${encodeURIComponent("x' OR account_id IS NOT NULL --")}`,
      `/v1/activity?limit=100000000`,
    ];
    for (const path of attempts) {
      const r = await get(path, attackerAdmin);
      expect(r.status, path).toBe(400);
      expect(JSON.parse(r.text)).toMatchObject({ error: { type: 'invalid_request_error' } });
      expectNoVictim(r.text);
    }
  });

  it('gets nothing without a valid key', async () => {
    for (const path of ['/v1/key', '/v1/credits', `/v1/generation?id=${victimRequest}`, '/v1/activity']) {
      const r = await get(path, 'mr-forged');
      expect(r.status).toBe(401);
      expectNoVictim(r.text);
    }
  });
});
