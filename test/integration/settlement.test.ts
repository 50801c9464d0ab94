import { spawn } from 'node:child_process';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { Money } from '../../src/billing/money';
import { workflowIds } from '../../src/temporal/conventions';
import { meteringStatusQuery, usageRecordedSignal } from '../../workflows/messages';
import { BIN } from '../helpers/cli';
import { testConfig, testDb, testEnv } from '../helpers/env';
import { startFakeUpstream, type FakeUpstream } from '../helpers/fakeUpstream';
import { createCustomer, startTestGateway, UPSTREAM_KEY } from '../helpers/gateway';
import { withTestWorker } from '../helpers/worker';

const config = testConfig({ SETTLE_MIN_INTERVAL_MS: '0' });
const db = testDb(config);
let upstream: FakeUpstream;
let connection: Connection;
let client: Client;
beforeAll(async () => {
  upstream = await startFakeUpstream({ apiKey: UPSTREAM_KEY });
  connection = await Connection.connect({ address: config.temporal.address! });
  client = new Client({ connection, namespace: config.temporal.namespace });
});
afterAll(async () => {
  await upstream.close();
  await connection.close();
  await db.destroy();
});

const until = async (check: () => Promise<boolean>) => {
  while (!(await check())) await new Promise((r) => setTimeout(r, 100));
};
const unsettled = async (accountId: string) => Number((await db('usage_events').where({ account_id: accountId }).whereNull('settled_at').count('* as n').first())!.n);

/** Every way of adding up the account's usage must agree. */
async function expectBooksAgree(accountId: string, credit: string) {
  const events = await db('usage_events').where({ account_id: accountId }).select(db.raw('count(*)::int AS n'), db.raw('coalesce(sum(cost),0)::text AS cost')).first();
  const hourly = await db('usage_hourly').where({ account_id: accountId }).select(db.raw('coalesce(sum(requests),0)::int AS n'), db.raw('coalesce(sum(cost),0)::text AS cost')).first();
  const usage = await db('ledger_entries').where({ account_id: accountId, kind: 'usage' }).select(db.raw('count(*)::int AS n'), db.raw('coalesce(sum(amount),0)::text AS amount')).first();
  const all = await db('ledger_entries').where({ account_id: accountId }).sum({ s: 'amount' }).first();
  const balance = await db('account_balances').where({ account_id: accountId }).first();
  const batches = await db('usage_events').where({ account_id: accountId }).countDistinct({ n: 'settlement_key' }).first();
  expect(hourly.n).toBe(events.n);
  expect(new Money(hourly.cost).eq(events.cost)).toBe(true);
  expect(new Money(usage.amount).neg().eq(events.cost)).toBe(true);
  expect(usage.n).toBe(Number(batches!.n)); // one ledger entry per settled batch, never two
  expect(new Money(balance.balance).eq(all!.s)).toBe(true);
  expect(new Money(balance.balance).eq(new Money(credit).minus(events.cost))).toBe(true);
  return { events: events.n as number, cost: events.cost as string };
}

describe('usage settlement', () => {
  it('deducts gateway usage from the balance through the metering workflow', async () => {
    const c = await createCustomer(db, upstream.url, { credit: '100' });
    const gw = await startTestGateway({ SETTLE_MIN_INTERVAL_MS: '0' }, config);
    try {
      await withTestWorker(config, db, async () => {
        for (let i = 0; i < 5; i++) {
          const r = await fetch(`${gw.url}/v1/chat/completions`, {
            method: 'POST',
            headers: { authorization: `Bearer ${c.key}`, 'content-type': 'application/json' },
            body: JSON.stringify({ model: c.model, messages: [{ role: 'user', content: 'bill me' }] }),
          });
          expect(r.status).toBe(200);
          await r.text();
        }
        await gw.batcher.flush();
        await until(async () => (await unsettled(c.accountId)) === 0);
        const totals = await expectBooksAgree(c.accountId, '100');
        expect(totals.events).toBe(5);
        const state = await client.workflow.getHandle(workflowIds.metering(c.accountId)).query(meteringStatusQuery);
        expect(state.eventsSettled).toBe(5);
      });
    } finally {
      await gw.stop();
    }
  });

  it('loses and double-counts nothing when the worker is killed mid-settlement and restarted', async () => {
    const c = await createCustomer(db, upstream.url, { credit: '50' });
    await db.raw(`SELECT ensure_usage_events_partition(current_date)`);
    await db.raw(
      `INSERT INTO usage_events (request_id, occurred_at, finished_at, account_id, api_key_id, endpoint, model, provider, status_code, stream, input_tokens, output_tokens, cost, latency_ms, gateway_instance)
       SELECT 'bulk-' || ? || '-' || g, now() - (g || ' milliseconds')::interval, now(), ?, ?, 'chat.completions', ?, 'p', 200, false, 10, 5, 0.000001234567, 3, 'bulk'
         FROM generate_series(1, 22000) g`,
      [c.accountId, c.accountId, c.keyId, c.model],
    );
    const env = testEnv(config, { SETTLE_MIN_INTERVAL_MS: '0', LOG_LEVEL: 'info' });
    // If this hangs, the failure says where: the step it was in, the workflow's pending work and the workers' own logs.
    let step = 'first worker starting';
    const logs: string[] = [];
    onTestFailed(async () => {
      const description = await client.workflow.getHandle(workflowIds.metering(c.accountId)).describe().catch((err: Error) => err.message);
      const pending = typeof description === 'string' ? description : { status: description.status.name, pendingActivities: description.raw.pendingActivities?.length ?? 0, pendingWorkflowTask: description.raw.pendingWorkflowTask ?? null };
      console.error(`[settlement kill test] failed at step: ${step}; unsettled ${await unsettled(c.accountId)}; workflow ${JSON.stringify(pending)}\n${logs.slice(-80).join('\n')}`);
    });
    let n = 0;
    const startWorker = () => {
      const name = `worker ${++n}`;
      const child = spawn(process.execPath, [BIN, 'worker'], { env, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
      for (const stream of [child.stdout, child.stderr]) {
        stream!.on('data', (d: Buffer) => {
          logs.push(...d.toString().trimEnd().split('\n').map((l) => `${name}: ${l}`));
          if (logs.length > 500) logs.splice(0, logs.length - 500);
        });
      }
      return { child, exited: new Promise((r) => child.once('exit', r)) };
    };
    let worker = startWorker();
    await client.workflow.signalWithStart('accountMetering', {
      workflowId: workflowIds.metering(c.accountId),
      taskQueue: config.temporal.taskQueue,
      args: [{ accountId: c.accountId, settleMinIntervalMs: 0 }],
      signal: usageRecordedSignal,
      signalArgs: [{ events: 22000, cost: '0', lastOccurredAt: new Date().toISOString() }],
    });
    // Kill it once settlement is under way, with batches still to go.
    step = 'waiting for the first worker to settle a batch';
    await until(async () => (await unsettled(c.accountId)) < 22000);
    worker.child.kill('SIGKILL');
    await worker.exited;
    expect(await unsettled(c.accountId)).toBeGreaterThan(0);

    step = 'waiting for the second worker to settle the rest';
    worker = startWorker();
    try {
      await until(async () => (await unsettled(c.accountId)) === 0);
      step = 'checking the books';
      const totals = await expectBooksAgree(c.accountId, '50');
      expect(totals.events).toBe(22000);
    } finally {
      worker.child.kill('SIGTERM');
      await worker.exited;
    }
  });
});
