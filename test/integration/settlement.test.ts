import { spawn } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { untilTrue } from '../helpers/eventually';
import { Money } from '../../src/shared/money.rules';
import { systemClock } from '../../src/clock';
import { createDb, type Db } from '../../src/db/knex';
import { acquireHold } from '../../src/ledger/holds.data';
import { postEntry } from '../../src/ledger/ledger.data';
import { checkBalances } from '../../src/reconciliation/checks/ledgerBalances.data';
import { checkUsage } from '../../src/reconciliation/checks/usageVsLedger.service';
import { meteringService, settleAccountUsage, settleShardUsage } from '../../src/metering/metering.service';
import { ledgerService } from '../../src/ledger/ledger.service';
import { shardOf } from '../../src/metering/shards.rules';
import { accountsService } from '../../src/accounts/accounts.service';
import { workflowIds } from '../../src/temporal/conventions';
import { billingActivities } from '../../activities/billing';
import { accountMetering } from '../../workflows/accountMetering';
import { settlementShard } from '../../workflows/settlementShard';
import { settlementShardStatusQuery, settlementWakeSignal } from '../../workflows/messages';
import { BIN, runCliJson } from '../helpers/cli';
import { testConfig, testDb, testEnv } from '../helpers/env';
import { startFakeUpstream, type FakeUpstream } from '../helpers/fakeUpstream';
import { createCustomer, startTestGateway, UPSTREAM_KEY } from '../helpers/gateway';
import { closeOwnStack, openOwnStack, ownDatabaseUrl, type OwnStack } from '../helpers/ownDatabase';
import { insertUsageEvents } from '../helpers/usageEvents';
import { withTestWorker } from '../helpers/worker';

/**
 * Settlement shards: `settlement:{shard}` settles its accounts' usage in
 * set-based passes. The first part runs on the shared test database (wake-ups
 * name their accounts, so a shard touches only this file's); the second
 * sweeps shards and so has a database of its own.
 */
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

const unsettled = async (d: Db, accountId: string) => Number((await d('usage_events').where({ account_id: accountId }).whereNull('settled_at').count('* as n').first())!.n);
const shardId = (accountId: string, cfg = config) => workflowIds.settlement(shardOf(accountId, cfg.billing.settlementShards), cfg.temporal.taskQueue);

/** Every way of adding up the account's usage must agree. */
async function expectBooksAgree(d: Db, accountId: string, credit: string) {
  const events = await d('usage_events').where({ account_id: accountId }).select(d.raw('count(*)::int AS n'), d.raw('coalesce(sum(cost),0)::text AS cost')).first();
  const hourly = await d('usage_hourly').where({ account_id: accountId }).select(d.raw('coalesce(sum(requests),0)::int AS n'), d.raw('coalesce(sum(cost),0)::text AS cost')).first();
  const usage = await d('ledger_entries').where({ account_id: accountId, kind: 'usage' }).select(d.raw('count(*)::int AS n'), d.raw('coalesce(sum(amount),0)::text AS amount')).first();
  const all = await d('ledger_entries').where({ account_id: accountId }).sum({ s: 'amount' }).first();
  const balance = await d('account_balances').where({ account_id: accountId }).first();
  const batches = await d('usage_events').where({ account_id: accountId }).countDistinct({ n: 'settlement_key' }).first();
  const holds = await d('balance_holds').where({ account_id: accountId }).select(d.raw('coalesce(sum(amount - settled),0)::text AS open')).first();
  expect(hourly.n).toBe(events.n);
  expect(new Money(hourly.cost).eq(events.cost)).toBe(true);
  expect(new Money(usage.amount).neg().eq(events.cost)).toBe(true);
  expect(usage.n).toBe(Number(batches!.n)); // one ledger entry per settled batch, never two
  expect(new Money(balance.balance).eq(all!.s ?? 0)).toBe(true);
  expect(new Money(balance.balance).eq(new Money(credit).minus(events.cost))).toBe(true);
  expect(new Money(balance.held).eq(holds.open)).toBe(true);
  return { events: events.n as number, cost: events.cost as string };
}

describe('usage settlement through the shards', () => {
  it('deducts gateway usage from the balance through the account\'s settlement shard', async () => {
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
        await untilTrue(async () => (await unsettled(db, c.accountId)) === 0, { timeoutMs: 30_000, message: "the shard to settle the gateway's five events" });
        const totals = await expectBooksAgree(db, c.accountId, '100');
        expect(totals.events).toBe(5);
        const state = await client.workflow.getHandle(shardId(c.accountId)).query(settlementShardStatusQuery);
        expect(state.shard).toBe(shardOf(c.accountId, config.billing.settlementShards));
        expect(state.eventsSettled).toBeGreaterThanOrEqual(5);
        expect(state.pendingAccounts).toEqual([]);
        // No per-account workflow was started.
        await expect(client.workflow.getHandle(workflowIds.metering(c.accountId)).describe()).rejects.toThrow();
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
    // Small passes, so the kill lands between two of them with work left.
    const env = testEnv(config, { SETTLE_MIN_INTERVAL_MS: '0', SETTLEMENT_BATCH_EVENTS: '1000', LOG_LEVEL: 'info' });
    const workflowId = shardId(c.accountId);
    // If this hangs, the failure says where: the step it was in, the workflow's pending work and the workers' own logs.
    let step = 'first worker starting';
    const logs: string[] = [];
    onTestFailed(async () => {
      const description = await client.workflow.getHandle(workflowId).describe().catch((err: Error) => err.message);
      const pending = typeof description === 'string' ? description : { status: description.status.name, pendingWorkflowTask: description.raw.pendingWorkflowTask ?? null };
      console.error(`[settlement kill test] failed at step: ${step}; unsettled ${await unsettled(db, c.accountId)}; workflow ${JSON.stringify(pending)}\n${logs.slice(-80).join('\n')}`);
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
    await client.workflow.signalWithStart('settlementShard', {
      workflowId,
      taskQueue: config.temporal.taskQueue,
      args: [{ shard: shardOf(c.accountId, config.billing.settlementShards), minIntervalMs: 0, sweepMs: 86_400_000 }],
      signal: settlementWakeSignal,
      signalArgs: [{ events: 22000, cost: '0', lastOccurredAt: new Date().toISOString(), accounts: [c.accountId] }],
    });
    // Kill it once settlement is under way, with passes still to go.
    step = 'waiting for the first worker to settle a pass';
    await untilTrue(async () => (await unsettled(db, c.accountId)) < 22000, { timeoutMs: 30_000, message: 'the first worker to settle a pass' });
    worker.child.kill('SIGKILL');
    await worker.exited;
    expect(await unsettled(db, c.accountId)).toBeGreaterThan(0);

    step = 'waiting for the second worker to settle the rest';
    worker = startWorker();
    try {
      await untilTrue(async () => (await unsettled(db, c.accountId)) === 0, { timeoutMs: 60_000, message: 'the second worker to settle the rest' });
      step = 'checking the books';
      const totals = await expectBooksAgree(db, c.accountId, '50');
      expect(totals.events).toBe(22000);
    } finally {
      worker.child.kill('SIGTERM');
      await worker.exited;
    }
  });
});

describe('set-based shard settlement (a database of its own)', () => {
  const own = testConfig({ DATABASE_URL: ownDatabaseUrl('settlement'), SETTLE_MIN_INTERVAL_MS: '0' });
  let stack: OwnStack;
  beforeAll(async () => {
    stack = await openOwnStack(own);
  });
  afterAll(async () => {
    await closeOwnStack(own, stack);
  });

  const grantOf = new Map<string, string>();
  async function newAccounts(n: number, credit = '10'): Promise<string[]> {
    const ops = accountsService({ db: stack.db, clock: systemClock });
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const id = (await ops.createAccount({ name: `Shard ${i}` })).id;
      await postEntry(stack.db, { accountId: id, kind: 'grant', contra: 'promotions', amount: new Money(credit), idempotencyKey: `grant:${id}`, referenceType: 'test', referenceId: id, actor: 'test' }, { overdraftAllowance: new Money(0) });
      grantOf.set(id, credit);
      ids.push(id);
    }
    return ids;
  }
  const hour = (h: number) => new Date(Date.now() - h * 3_600_000);
  const allUnsettledOf = async (ids: string[]) => Number((await stack.db('usage_events').whereIn('account_id', ids).whereNull('settled_at').count('* as n').first())!.n);
  /** The statements a call sends to PostgreSQL (BEGIN and COMMIT included). */
  async function countingStatements<T>(fn: () => Promise<T>): Promise<{ result: T; statements: number }> {
    let statements = 0;
    const onQuery = () => (statements += 1);
    stack.db.on('query', onQuery);
    try {
      return { result: await fn(), statements };
    } finally {
      stack.db.off('query', onQuery);
    }
  }

  it('settles any number of accounts in the same few statements, exactly once, with late rows for invoiced hours and holds released', async () => {
    const few = await newAccounts(3);
    const many = await newAccounts(60);
    const holds = new Map<string, string>();
    for (const id of [...few, ...many]) {
      const hold = await acquireHold(stack.db, { accountId: id, need: new Money('0.5'), slice: new Money('1'), holder: 'test', ttlMs: 600_000, overdraftAllowance: new Money(0) });
      holds.set(id, hold!.holdId);
      await insertUsageEvents(stack.db, [
        { account_id: id, occurred_at: hour(3), cost: '0.010000000001', hold_id: hold!.holdId },
        { account_id: id, occurred_at: hour(3), cost: '0.02', model: 'other', hold_id: hold!.holdId },
        { account_id: id, occurred_at: hour(1), cost: '0.03', input_tokens: 7, cache_write_tokens: 9, cache_write_1h_tokens: 4, hold_id: hold!.holdId },
        { account_id: id, occurred_at: hour(0), cost: '0', output_tokens: 0 },
      ]);
    }
    // One account was invoiced up to two hours ago: its older usage is late, for the next invoice.
    const invoiced = many[0]!;
    await stack.db('usage_invoiced_boundaries').insert({ account_id: invoiced, invoiced_until: new Date(Math.floor(hour(2).getTime() / 3_600_000) * 3_600_000) });

    const small = await countingStatements(() => settleShardUsage(stack.db, { shard: 0, shards: 1, accounts: few, limit: 5_000 }));
    const large = await countingStatements(() => settleShardUsage(stack.db, { shard: 0, shards: 1, accounts: many, limit: 5_000 }));
    expect(small.result).toMatchObject({ events: 12, accounts: 3, more: false });
    expect(large.result).toMatchObject({ events: 240, accounts: 60, more: false });
    expect(new Money(large.result.cost).eq(new Money('0.060000000001').times(60))).toBe(true);
    // The work is set-based: twenty times the accounts, the same statements.
    expect(large.statements).toBe(small.statements);
    expect(large.statements).toBeLessThanOrEqual(4);

    for (const id of [...few, ...many]) {
      await expectBooksAgree(stack.db, id, '10');
      // Each hold gave up what its usage cost: 0.06 of the 1.00 it reserved.
      const h = await stack.db('balance_holds').where({ id: holds.get(id) }).first();
      expect(new Money(h.settled).eq('0.060000000001')).toBe(true);
    }
    const late = await stack.db('usage_hourly').where({ account_id: invoiced }).orderBy(['hour', 'model']).select('late', 'requests');
    expect(late).toEqual([
      { late: true, requests: 1 },
      { late: true, requests: 1 },
      { late: false, requests: 1 },
      { late: false, requests: 1 },
    ]);
    // Cache writes reach usage_hourly with their one-hour part apart (invoices price the two lifetimes apart).
    const writes = await stack.db('usage_hourly').where({ account_id: many[1] }).sum({ all: 'cache_write_tokens', oneHour: 'cache_write_1h_tokens' }).first();
    expect({ all: Number(writes!.all), oneHour: Number(writes!.oneHour) }).toEqual({ all: 9, oneHour: 4 });
    const onTime = await stack.db('usage_hourly').where({ account_id: many[1] }).where({ late: true }).count('* as n').first();
    expect(Number(onTime!.n)).toBe(0);

    // The key is the one per-account settlement would give the same events, so reconciliation reads both alike.
    const events = await stack.db('usage_events').where({ account_id: many[1] }).orderBy([{ column: 'occurred_at' }, { column: 'request_id' }]).select('request_id', stack.db.raw('occurred_at::text AS at'), 'settlement_key');
    const key = `usage:${many[1]}:${createHash('sha256').update(events.map((e) => `${e.request_id}@${e.at}`).join('\n')).digest('hex').slice(0, 32)}`;
    expect(new Set(events.map((e) => e.settlement_key))).toEqual(new Set([key]));
    expect(await stack.db('ledger_entries').where({ idempotency_key: key }).first()).toMatchObject({ account_id: many[1], kind: 'usage', reference_type: 'usage_batch', reference_id: key });

    // A re-run finds nothing and changes nothing.
    const entries = Number((await stack.db('ledger_entries').count('* as n').first())!.n);
    expect(await settleShardUsage(stack.db, { shard: 0, shards: 1, accounts: many, limit: 5_000 })).toMatchObject({ events: 0, more: false });
    expect(Number((await stack.db('ledger_entries').count('* as n').first())!.n)).toBe(entries);
    for (const id of many) await expectBooksAgree(stack.db, id, '10');
  });

  it('bounds a pass, says when more is pending, and ignores names that are not account ids', async () => {
    const [a, b] = await newAccounts(2);
    await insertUsageEvents(stack.db, Array.from({ length: 25 }, (_, i) => ({ account_id: i % 2 ? a! : b!, occurred_at: hour(0), cost: '0.001' })));
    const passes = [];
    for (;;) {
      // A name in a wake-up that is not an account id is dropped, not allowed to fail the pass.
      const r = await settleShardUsage(stack.db, { shard: 0, shards: 1, accounts: [a!, 'not-an-account', b!], limit: 10 });
      passes.push(r.events);
      if (!r.more) break;
    }
    expect(passes).toEqual([10, 10, 5]);
    await expectBooksAgree(stack.db, a!, '10');
    await expectBooksAgree(stack.db, b!, '10');
  });

  it('sweeps exactly the accounts of its shard: PostgreSQL and the rule agree on the hash', async () => {
    const ids = await newAccounts(32);
    await insertUsageEvents(stack.db, ids.map((id) => ({ account_id: id, occurred_at: hour(0), cost: '0.001' })));
    const shards = 4;
    for (let shard = 0; shard < shards; shard++) {
      const mine = ids.filter((id) => shardOf(id, shards) === shard);
      let r;
      do r = await settleShardUsage(stack.db, { shard, shards, limit: 7 });
      while (r.more);
      const settledNow = (await stack.db('usage_events').whereIn('account_id', ids).whereNotNull('settled_at').pluck('account_id')) as string[];
      // Everything of this shard and the shards before it, nothing of the later ones.
      expect(new Set(settledNow)).toEqual(new Set(ids.filter((id) => shardOf(id, shards) <= shard)));
      expect(mine.every((id) => settledNow.includes(id))).toBe(true);
    }
    for (const id of ids) await expectBooksAgree(stack.db, id, '10');
  });

  it('lets top-ups, refunds and per-account settlement of the same accounts wait instead of deadlocking', async () => {
    const ids = await newAccounts(40, '100');
    await insertUsageEvents(stack.db, ids.flatMap((id) => Array.from({ length: 20 }, () => ({ account_id: id, occurred_at: hour(0), cost: '0.0123' }))));
    const shuffled = () => [...ids].sort(() => Math.random() - 0.5);
    const credits = new Map(ids.map((id) => [id, new Money(100)]));
    const work: Promise<unknown>[] = [];
    for (let round = 0; round < 6; round++) {
      // Overlapping passes over the accounts, named in any order.
      work.push(settleShardUsage(stack.db, { shard: 0, shards: 1, accounts: shuffled().slice(0, 30), limit: 150 }));
      for (const id of shuffled().slice(0, 10)) {
        const kind = round % 2 ? 'topup' : 'refund';
        const amount = new Money('0.5');
        credits.set(id, kind === 'topup' ? credits.get(id)!.plus(amount) : credits.get(id)!.minus(amount));
        work.push(postEntry(stack.db, { accountId: id, kind, contra: 'cash', amount: kind === 'topup' ? amount : amount.neg(), idempotencyKey: `${kind}:${id}:${round}`, referenceType: 'test', referenceId: id, actor: 'test' }, { overdraftAllowance: new Money(0) }));
      }
      work.push(settleAccountUsage(stack.db, ids[round]!, { limit: 7, overdraftAllowance: new Money(0) }));
    }
    await Promise.all(work);
    while ((await settleShardUsage(stack.db, { shard: 0, shards: 1, accounts: ids, limit: 5_000 })).more);
    expect(await allUnsettledOf(ids)).toBe(0);
    for (const id of ids) await expectBooksAgree(stack.db, id, credits.get(id)!.toString());
  });

  it('leaves books that reconciliation finds clean', async () => {
    const now = new Date();
    const start = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate())).toISOString();
    const end = new Date(Date.parse(start) + 86_400_000).toISOString();
    const ctx = { db: stack.db, reportId: '00000000-0000-4000-8000-000000000000', window: { scope: 'day' as const, label: start.slice(0, 10), start, end }, now, settlementLagS: 900, paymentGraceS: 900, overdraftAllowance: new Money(0) };
    expect(await checkUsage(ctx)).toEqual([]);
    expect(await checkBalances(ctx)).toEqual([]);
  });

  it('one account whose usage cannot be settled (a data error) does not hold back the rest of its pass', async () => {
    const [healthy1, bad, healthy2] = await newAccounts(3);
    // Two events at the largest cost NUMERIC(24,12) holds: their sum (the ledger entry's amount, the
    // usage_hourly cost and the balance) overflows it, SQLSTATE 22003, in the shard pass and alone alike.
    const max = '999999999999.999999999999';
    await insertUsageEvents(stack.db, [
      { account_id: healthy1!, occurred_at: hour(0), cost: '0.25' },
      { account_id: bad!, occurred_at: hour(0), cost: max },
      { account_id: bad!, occurred_at: hour(0), cost: max },
      { account_id: healthy2!, occurred_at: hour(0), cost: '0.5' },
    ]);
    const named = [healthy1!, bad!, healthy2!];
    await expect(settleShardUsage(stack.db, { shard: 0, shards: 1, accounts: named, limit: 5_000 })).rejects.toMatchObject({ code: '22003' });

    const lines: Record<string, unknown>[] = [];
    const logger = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) });
    const billing = { ...own.billing, settlementShards: 1 };
    const activities = billingActivities({ ledger: ledgerService({ db: stack.db, billing }), metering: meteringService({ db: stack.db, billing, logger }) });
    const r = await activities.settleShard({ shard: 0, accounts: named });
    expect(r).toMatchObject({ events: 2, accounts: 2, cost: '0.75', more: false, failedAccounts: 1 });
    await expectBooksAgree(stack.db, healthy1!, '10');
    await expectBooksAgree(stack.db, healthy2!, '10');
    expect(await allUnsettledOf([healthy1!, healthy2!])).toBe(0);
    expect(await allUnsettledOf([bad!])).toBe(2);
    expect(await stack.db('ledger_entries').where({ account_id: bad!, kind: 'usage' }).first()).toBeUndefined();
    // The account that failed is logged by id and SQLSTATE, nothing of its usage.
    const failed = lines.filter((l) => l.accountId !== undefined);
    expect(failed).toEqual([expect.objectContaining({ level: 50, shard: 0, accountId: bad!, code: '22003' })]);
    expect(JSON.stringify(lines)).not.toContain('999999999999');

    // A sweep of the shard goes on the same way, and stops (more: false) with the bad account still unsettled.
    await insertUsageEvents(stack.db, [{ account_id: healthy1!, occurred_at: hour(0), cost: '0.125' }]);
    expect(await activities.settleShard({ shard: 0 })).toMatchObject({ events: 1, accounts: 1, more: false, failedAccounts: 1 });
    await expectBooksAgree(stack.db, healthy1!, '10');
    expect(await allUnsettledOf([bad!])).toBe(2);

    // Not a data error (the connection is gone): thrown, for the workflow to retry the pass.
    const gone = createDb({ databaseUrl: 'postgres://nobody:x@127.0.0.1:1/none', poolMax: 1, applicationName: 'mixroute-test' });
    try {
      await expect(billingActivities({ ledger: ledgerService({ db: gone, billing }), metering: meteringService({ db: gone, billing, logger }) }).settleShard({ shard: 0, accounts: named })).rejects.toThrow();
    } finally {
      await gone.destroy();
    }
    // Reconciliation's overdue-usage repair meets the same refusal: the account is flagged for billing
    // staff with the SQLSTATE, and the check goes on instead of failing.
    const window = { scope: 'day' as const, label: 'test', start: hour(2).toISOString(), end: new Date().toISOString() };
    const found = await checkUsage({ db: stack.db, reportId: randomUUID(), window, now: new Date(), settlementLagS: 0, paymentGraceS: 0, overdraftAllowance: new Money(0) });
    expect(found.filter((d) => d.accountId === bad!)).toEqual([
      expect.objectContaining({ kind: 'unsettled_usage', resolution: 'needs_attention', details: expect.objectContaining({ refusedWith: '22003', events: 2 }) }),
    ]);
    // Leave the database as the next test expects it: nothing unsettled.
    await stack.db('usage_events').where({ account_id: bad! }).delete();
  });

  it('a sweep cut short by a long history is carried to the next generation, not left for the sweep timer', async () => {
    const ids = (await newAccounts(6)).sort();
    await insertUsageEvents(stack.db, ids.flatMap((id) => [0, 1].map(() => ({ account_id: id, occurred_at: hour(0), cost: '0.001' }))));
    // Two events a pass: the sweep's first pass takes the first account (account-id order), whose balance row
    // this transaction holds, so the pass waits and the workflow task heartbeats (every 0.8 s of a 1 s task
    // timeout), which makes the history long in the middle of the sweep.
    const cfg = { ...own, billing: { ...own.billing, settlementShards: 1, settlementBatchEvents: 2 } };
    const blocker = await stack.db.transaction();
    await blocker('account_balances').where({ account_id: ids[0]! }).forUpdate().first();
    await withTestWorker(cfg, stack.db, async () => {
      const handle = await stack.client.workflow.signalWithStart(settlementShard, {
        taskQueue: own.temporal.taskQueue,
        workflowId: `${workflowIds.settlement(0, own.temporal.taskQueue)}:cut-short`,
        workflowTaskTimeout: '1s',
        args: [{ shard: 0, maxHistoryEvents: 6, minIntervalMs: 0, sweepMs: 86_400_000 }],
        signal: settlementWakeSignal,
        signalArgs: [{ events: 0, cost: '0', lastOccurredAt: new Date().toISOString(), sweep: true }],
      });
      const first = stack.client.workflow.getHandle(handle.workflowId, handle.signaledRunId);
      try {
        // Started, signalled, a task, and a heartbeat's task: the history is long (>= 6) once the pass returns.
        await untilTrue(async () => ((await first.fetchHistory()).events?.length ?? 0) >= 7, { timeoutMs: 30_000, message: 'the blocked sweep to make the history long' });
        await blocker.rollback();
        await untilTrue(async () => (await first.describe()).status.name === 'CONTINUED_AS_NEW', { timeoutMs: 30_000, message: 'the shard to continue as new once its pass returns' });
        const history = await first.fetchHistory();
        const payload = history.events?.at(-1)?.workflowExecutionContinuedAsNewEventAttributes?.input?.payloads?.[0];
        const carried = defaultPayloadConverter.fromPayload<{ state: { sweepPending: boolean; sweeps: number } }>(payload as never);
        expect(carried.state).toMatchObject({ sweeps: 1, sweepPending: true });
        // The next generation sweeps the rest at once (its sweep timer is a day away).
        await untilTrue(async () => (await allUnsettledOf(ids)) === 0, { timeoutMs: 30_000, message: 'the next generation to sweep the rest at once' });
      } finally {
        if (!blocker.isCompleted()) await blocker.rollback();
        await handle.terminate('test done').catch(() => undefined);
      }
    });
    for (const id of ids) await expectBooksAgree(stack.db, id, '10');
  });

  it('`mixroute settlement migrate` starts every shard with a sweep and drains the per-account workflows', async () => {
    const [drainer, ...silent] = await newAccounts(5);
    await insertUsageEvents(stack.db, [drainer!, ...silent].flatMap((id) => Array.from({ length: 3 }, () => ({ account_id: id, occurred_at: hour(0), cost: '0.002' }))));
    await withTestWorker(own, stack.db, async () => {
      // A per-account workflow of the old design, waiting for its next wake-up.
      const old = await stack.client.workflow.start(accountMetering, {
        taskQueue: own.temporal.taskQueue,
        workflowId: workflowIds.metering(drainer!),
        args: [{ accountId: drainer!, settleMinIntervalMs: 0, sweepMs: 86_400_000 }],
      });
      // The command finds running workflows through visibility, which follows the start by a moment.
      await untilTrue(
        async () => {
          for await (const w of stack.client.workflow.list({ query: `WorkflowId = '${old.workflowId}' AND ExecutionStatus = 'Running'` })) return w.workflowId === old.workflowId;
          return false;
        },
        { timeoutMs: 10_000, message: 'the per-account workflow to be listed as running' },
      );
      const out = await runCliJson(['settlement', 'migrate', '--wait'], testEnv(own));
      expect(out).toMatchObject({ shards: own.billing.settlementShards, drained: out.meteringRunning, terminated: 0, meteringLeft: 0 });
      expect(out.meteringRunning).toBeGreaterThanOrEqual(1);
      expect((await old.describe()).status.name).toBe('COMPLETED');
      await untilTrue(async () => (await allUnsettledOf([drainer!, ...silent])) === 0, { timeoutMs: 30_000, message: 'the started shards to settle the five accounts' });
      for (const id of [drainer!, ...silent]) await expectBooksAgree(stack.db, id, '10');
      const shard = await stack.client.workflow.getHandle(shardId(silent[0]!, own)).query(settlementShardStatusQuery);
      expect(shard.sweeps).toBeGreaterThanOrEqual(1);
      // Again: nothing changes, nothing is left to drain.
      expect(await runCliJson(['settlement', 'migrate'], testEnv(own))).toMatchObject({ meteringRunning: 0 });
    });
  });
});
