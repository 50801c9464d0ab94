import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { StopWaiting, untilTrue } from '../helpers/eventually';
import { Money } from '../../src/shared/money.rules';
import { systemClock } from '../../src/clock';
import { checkBalances } from '../../src/reconciliation/checks/ledgerBalances.data';
import { checkUsage } from '../../src/reconciliation/checks/usageVsLedger.service';
import { allShards } from '../../src/metering/shards.rules';
import { accountsService } from '../../src/accounts/accounts.service';
import { workflowIds } from '../../src/temporal/conventions';
import { postEntry } from '../../src/ledger/ledger.data';
import { BIN } from '../helpers/cli';
import { testConfig, testEnv } from '../helpers/env';
import { startFakeUpstream, type FakeUpstream } from '../helpers/fakeUpstream';
import { createCustomer, startTestGateway, UPSTREAM_KEY } from '../helpers/gateway';
import { closeOwnStack, openOwnStack, ownDatabaseUrl, type OwnStack } from '../helpers/ownDatabase';

/**
 * Scale out: two worker processes and two gateway instances against one
 * Temporal server and one PostgreSQL (a database of this file's own), load
 * over many accounts through both gateways. Every event is settled exactly
 * once, and every balance equals its ledger and its credit minus its usage.
 */
const ACCOUNTS = 200;
const REQUESTS = 3_000;
const IN_FLIGHT = 24;
const CREDIT = '10';

const config = testConfig({ DATABASE_URL: ownDatabaseUrl('scaleout'), SETTLE_MIN_INTERVAL_MS: '0' });
let stack: OwnStack;
let upstream: FakeUpstream;
beforeAll(async () => {
  stack = await openOwnStack(config);
  upstream = await startFakeUpstream({ apiKey: UPSTREAM_KEY });
});
afterAll(async () => {
  await upstream?.close();
  await closeOwnStack(config, stack);
});

describe('settlement scale-out', () => {
  it('two workers and two gateways settle every event exactly once, and every balance equals its ledger', async () => {
    const { db, client } = stack;
    // One provider and model; the accounts share them.
    const first = await createCustomer(db, upstream.url, { credit: CREDIT });
    const ops = accountsService({ db, clock: systemClock });
    const customers = [{ accountId: first.accountId, key: first.key }];
    for (let i = 1; i < ACCOUNTS; i++) {
      const account = await ops.createAccount({ name: `Scale ${i}` });
      await postEntry(db, { accountId: account.id, kind: 'grant', contra: 'promotions', amount: new Money(CREDIT), idempotencyKey: `test-grant:${account.id}`, referenceType: 'test', referenceId: account.id, actor: 'test' }, { overdraftAllowance: new Money(0) });
      const user = await ops.createUser({ accountId: account.id, name: `User ${i}`, email: `scale-${i}@example.com` });
      customers.push({ accountId: account.id, key: (await ops.createKey({ accountId: account.id, userId: user.id })).key });
    }
    const ids = customers.map((c) => c.accountId);

    const env = testEnv(config, { SETTLE_MIN_INTERVAL_MS: '0', LOG_LEVEL: 'warn' });
    const logs: string[] = [];
    const workers = [1, 2].map((n) => {
      const child = spawn(process.execPath, [BIN, 'worker'], { env, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
      for (const s of [child.stdout, child.stderr]) s!.on('data', (d: Buffer) => logs.push(...d.toString().trimEnd().split('\n').map((l) => `worker ${n}: ${l}`).slice(-200)));
      return { child, exited: new Promise((r) => child.once('exit', r)) };
    });
    // Both workers polling before the load starts, so the shards spread over them.
    await untilTrue(
      async () => {
        if (workers.some((w) => w.child.exitCode !== null)) throw new StopWaiting(`a worker exited:\n${logs.join('\n')}`);
        const { pollers } = await client.workflowService.describeTaskQueue({ namespace: config.temporal.namespace, taskQueue: { name: config.temporal.taskQueue }, taskQueueType: 1 });
        return new Set((pollers ?? []).map((p) => p.identity)).size >= 2;
      },
      { timeoutMs: 60_000, intervalMs: 200, message: 'both worker processes to poll the task queue' },
    );
    // All the load comes from one address: no per-address limit on key lookups.
    const gateways = await Promise.all(
      ['gw-a', 'gw-b'].map((instance) => startTestGateway({ DATABASE_URL: config.databaseUrl, GATEWAY_INSTANCE_ID: instance, SETTLE_MIN_INTERVAL_MS: '0', LOG_LEVEL: 'silent', GATEWAY_AUTH_FAILURES_PER_MIN: '0' }, config)),
    );
    let step = 'load';
    const unsettled = async () => Number((await db('usage_events').whereIn('account_id', ids).whereNull('settled_at').count('* as n').first())!.n);
    onTestFailed(async () => {
      console.error(`[scale-out] failed at ${step}; unsettled ${await unsettled().catch(() => '?')}\n${logs.slice(-60).join('\n')}`);
    });
    const statuses = new Map<number, number>();
    try {
      // Bounded load: request i goes to gateway i % 2 for account i % ACCOUNTS, IN_FLIGHT at a time.
      let next = 0;
      await Promise.all(
        Array.from({ length: IN_FLIGHT }, async () => {
          for (let i = next++; i < REQUESTS; i = next++) {
            const c = customers[i % ACCOUNTS]!;
            const r = await fetch(`${gateways[i % 2]!.url}/v1/chat/completions`, {
              method: 'POST',
              headers: { authorization: `Bearer ${c.key}`, 'content-type': 'application/json' },
              body: JSON.stringify({ model: first.model, messages: [{ role: 'user', content: `scale ${i}` }] }),
            });
            await r.text();
            statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
          }
        }),
      );
      // Every request was served: no account's balance was short.
      expect(Object.fromEntries(statuses)).toEqual({ 200: REQUESTS });
      for (const gw of gateways) await gw.batcher.flush();

      step = 'waiting for settlement';
      const events = async () => Number((await db('usage_events').whereIn('account_id', ids).count('* as n').first())!.n);
      await untilTrue(async () => (await events()) >= REQUESTS && (await unsettled()) === 0, { timeoutMs: 60_000, intervalMs: 200, message: 'every event to be inserted and settled' });
    } finally {
      await Promise.all(gateways.map((gw) => gw.stop()));
    }
    try {
      step = 'checking the books';
      // Exactly one event per request, each settled under a key with exactly one ledger entry of its cost.
      const perKey = (
        await db.raw(
          `SELECT e.settlement_key, e.account_id, count(*)::int AS events, sum(e.cost) AS cost,
                  (SELECT count(*)::int FROM ledger_entries le WHERE le.idempotency_key = e.settlement_key) AS entries,
                  (SELECT sum(le.amount) FROM ledger_entries le WHERE le.idempotency_key = e.settlement_key AND le.account_id = e.account_id) AS amount
             FROM usage_events e WHERE e.account_id = ANY(?::uuid[])
            GROUP BY e.settlement_key, e.account_id`,
          [ids],
        )
      ).rows as { settlement_key: string | null; events: number; cost: string; entries: number; amount: string | null }[];
      expect(perKey.reduce((n, k) => n + k.events, 0)).toBe(REQUESTS);
      for (const k of perKey) {
        expect(k.settlement_key).not.toBeNull();
        expect(k.entries).toBe(1);
        expect(new Money(k.amount!).neg().eq(k.cost)).toBe(true);
      }
      // Per account: balance = sum of its entries = credit - sum of its events' costs; usage_hourly counts every event.
      const books = (
        await db.raw(
          `SELECT a.id, b.balance, b.held,
                  (SELECT sum(amount) FROM ledger_entries le WHERE le.account_id = a.id) AS entries,
                  (SELECT COALESCE(sum(cost), 0) FROM usage_events e WHERE e.account_id = a.id) AS used,
                  (SELECT count(*)::int FROM usage_events e WHERE e.account_id = a.id) AS events,
                  (SELECT COALESCE(sum(requests), 0)::int FROM usage_hourly h WHERE h.account_id = a.id) AS hourly,
                  (SELECT COALESCE(sum(amount - settled), 0) FROM balance_holds h WHERE h.account_id = a.id) AS holds
             FROM accounts a JOIN account_balances b ON b.account_id = a.id
            WHERE a.id = ANY(?::uuid[])`,
          [ids],
        )
      ).rows as { id: string; balance: string; held: string; entries: string; used: string; events: number; hourly: number; holds: string }[];
      expect(books).toHaveLength(ACCOUNTS);
      for (const b of books) {
        expect(b.events).toBe(REQUESTS / ACCOUNTS);
        expect(b.hourly).toBe(b.events);
        expect(new Money(b.balance).eq(b.entries)).toBe(true);
        expect(new Money(b.balance).eq(new Money(CREDIT).minus(b.used))).toBe(true);
        expect(new Money(b.held).eq(b.holds)).toBe(true);
      }
      // Reconciliation finds the same books.
      const now = new Date();
      const start = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate())).toISOString();
      const window = { scope: 'day' as const, label: start.slice(0, 10), start, end: new Date(Date.parse(start) + 86_400_000).toISOString() };
      const ctx = { db, reportId: '00000000-0000-4000-8000-000000000001', window, now, settlementLagS: 900, paymentGraceS: 900, overdraftAllowance: new Money(0) };
      expect(await checkUsage(ctx)).toEqual([]);
      expect(await checkBalances(ctx)).toEqual([]);

      // The shards did the work, on both workers; no per-account workflow was started.
      const identities = new Set<string>();
      let shardsSeen = 0;
      for (const shard of allShards(config.billing.settlementShards)) {
        const handle = client.workflow.getHandle(workflowIds.settlement(shard, config.temporal.taskQueue));
        const history = await handle.fetchHistory().catch(() => undefined);
        if (!history) continue;
        shardsSeen += 1;
        for (const e of history.events ?? []) if (e.workflowTaskCompletedEventAttributes?.identity) identities.add(e.workflowTaskCompletedEventAttributes.identity);
      }
      expect(shardsSeen).toBe(config.billing.settlementShards);
      expect(identities.size).toBe(2);
      await expect(client.workflow.getHandle(workflowIds.metering(ids[0]!)).describe()).rejects.toThrow();
    } finally {
      for (const w of workers) w.child.kill('SIGTERM');
      await Promise.all(workers.map((w) => w.exited));
    }
  });
});
