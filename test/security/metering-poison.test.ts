import { afterAll, describe, expect, it } from 'vitest';
import { untilTrue } from '../helpers/eventually';
import { createAdminApp } from '../../src/admin/app';
import { systemClock } from '../../src/clock';
import { MAX_TOKEN_COUNT } from '../../src/metering/record';
import { silentLogger, testConfig, testDb } from '../helpers/env';
import { serve } from '../helpers/servers';
import { startFakeUpstream, type FakeUpstream } from '../helpers/fakeUpstream';
import { createCustomer, startTestGateway, UPSTREAM_KEY } from '../helpers/gateway';
import { staffService } from '../../src/staff/staff.service';

/**
 * Attack: a provider (compromised, buggy, or pointed at by a confused route)
 * reports absurd token counts. Before the fix, 3,000,000,000 prompt tokens
 * overflowed usage_events' `integer` columns, the whole batch failed, the
 * batcher retried it forever, and no later request of any customer was
 * metered. Now the count is stored as bigint, an absurd one is clamped and
 * flagged, and a record PostgreSQL still refuses (here: a cost beyond
 * numeric(24,12)) is set aside in metering_quarantine and counted, while
 * everyone else's usage keeps going in.
 */
const config = testConfig();
const db = testDb(config);
const upstreams: FakeUpstream[] = [];
let gw: Awaited<ReturnType<typeof startTestGateway>>;

afterAll(async () => {
  await gw?.stop();
  for (const u of upstreams) await u.close();
  await db.destroy();
});

/** A customer whose provider reports `promptTokens` for every request. */
async function customerReporting(promptTokens: number, prices?: { input: string; output: string }) {
  const upstream = await startFakeUpstream({ apiKey: UPSTREAM_KEY });
  upstreams.push(upstream);
  upstream.setDefault({ kind: 'ok', promptTokens });
  return createCustomer(db, upstream.url, prices ? { prices } : {});
}

async function chat(key: string, model: string): Promise<string> {
  const res = await fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model, messages: [{ role: 'user', content: 'count me' }], max_tokens: 16 }),
  });
  expect(res.status).toBe(200);
  await res.text();
  return res.headers.get('x-request-id')!;
}

// A few batch intervals (METERING_BATCH_MS) with retries; a deadline, not a timing assertion.
const until = (check: () => Promise<boolean> | boolean, what: string) => untilTrue(check, { timeoutMs: 30_000, message: what });
const eventOf = (requestId: string) => db('usage_events').where({ request_id: requestId }).first();

describe('a provider reporting absurd token counts', () => {
  it('cannot stop metering: 3e9 tokens are stored, an absurd count is clamped, a refused record is quarantined, and the next customer is metered', async () => {
    const billions = await customerReporting(3_000_000_000);
    const absurd = await customerReporting(5_000_000_000_000_000, { input: '0.0001', output: '0.0001' });
    // 5e15 tokens at 500 per million: a cost of 2.5e12, beyond what usage_events.cost can hold.
    const overflowing = await customerReporting(5_000_000_000_000_000, { input: '500', output: '10' });
    const negative = await customerReporting(-5);
    const bystander = await customerReporting(11);
    // Started after the routes exist, so the first routing load has them.
    gw = await startTestGateway();

    const poisoned = await chat(billions.key, billions.model);
    const clamped = await chat(absurd.key, absurd.model);
    const refused = await chat(overflowing.key, overflowing.model);
    const belowZero = await chat(negative.key, negative.model);
    const later = await chat(bystander.key, bystander.model);

    // Another customer's later request reaches usage_events: metering was not stopped.
    await until(async () => (await eventOf(later)) !== undefined, 'the bystander request is metered');

    expect(await eventOf(poisoned)).toMatchObject({ account_id: billions.accountId, input_tokens: 3_000_000_000, usage_clamped: false });
    expect(await eventOf(clamped)).toMatchObject({ account_id: absurd.accountId, input_tokens: MAX_TOKEN_COUNT, usage_clamped: true });
    // A negative count is clamped to 0 and flagged, like one too large.
    expect(await eventOf(belowZero)).toMatchObject({ account_id: negative.accountId, input_tokens: 0, usage_clamped: true });

    await until(async () => (await db('metering_quarantine').where({ request_id: refused }).first()) !== undefined, 'the refused record is quarantined');
    expect(await eventOf(refused)).toBeUndefined();
    const q = await db('metering_quarantine').where({ request_id: refused }).first();
    expect(q).toMatchObject({ account_id: overflowing.accountId, error_code: '22003', resolved_at: null });
    // Metadata only, and not even the network facts: the record is kept to re-meter it, not to profile anyone.
    expect(q.record).toMatchObject({ requestId: refused, accountId: overflowing.accountId, model: overflowing.model });
    expect(q.record).not.toHaveProperty('sourceIp');
    expect(q.record).not.toHaveProperty('userAgent');
    expect(q.error_message).not.toMatch(/count me/);

    const metrics = await (await fetch(gw.metricsUrl)).text();
    expect(metrics).toMatch(/^metering_quarantined_records_total\{[^}]*code="22003"[^}]*\} 1$/m);
    expect(metrics).toMatch(/^metering_clamped_records_total(\{[^}]*\})? [1-9]\d*$/m);

    // Billing staff find it over the admin API.
    const admin = await serve(createAdminApp({ db, billing: config.billing, config, clock: systemClock, logger: silentLogger, readiness: {}, readyCheckTimeoutMs: 1000 }));
    try {
      const { token } = await staffService({ db }).createStaffToken({ role: 'billing' });
      const listed = await fetch(`${admin.url}/billing/metering-quarantine?limit=500`, { headers: { authorization: `Bearer ${token}` } });
      expect(listed.status).toBe(200);
      const { items } = (await listed.json()) as { items: { requestId: string; errorCode: string; accountId: string }[] };
      expect(items).toContainEqual(expect.objectContaining({ requestId: refused, errorCode: '22003', accountId: overflowing.accountId }));
    } finally {
      await admin.close();
    }

    // The journal segments are done: nothing is left waiting to be retried.
    await until(async () => gw.journal.closedSegments().length === 0, 'the journal segments are removed');
  });
});
