import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../helpers/eventually';
import { createActivities } from '../../activities';
import { systemClock } from '../../src/clock';
import { workflowIds } from '../../src/temporal/conventions';
import { accountMetering } from '../../workflows/accountMetering';
import { invoiceAccount } from '../../workflows/invoiceAccount';
import { topUp } from '../../workflows/topUp';
import { accountsService } from '../../src/accounts/accounts.service';
import { settlementShardStatusQuery, settlementWakeSignal, usageRecordedSignal } from '../../workflows/messages';
import { settlementShard } from '../../workflows/settlementShard';
import { insertUsageEvents } from '../helpers/usageEvents';
import { runHealthProbe } from '../../src/temporal/healthProbe';
import { WORKFLOWS_PATH } from '../../src/worker/worker';
import { silentLogger, testConfig, testDb } from '../helpers/env';

/**
 * Round trip through the real dev server, and replay: every history under
 * test/replay/histories must replay against today's workflow code, so a change
 * that would break running workflows fails here. Refresh a fixture with
 * UPDATE_REPLAY_FIXTURES=1 only when the change is meant to be compatible.
 */
// Loaded through Node's own require so it shares protobufjs with the worker (vitest's
// module graph would load a second copy, whose types the first one rejects).
const { historyFromJSON, historyToJSON } = createRequire(import.meta.url)(
  '@temporalio/common/lib/proto-utils',
) as typeof import('@temporalio/common/lib/proto-utils');
const HISTORIES = fileURLToPath(new URL('../replay/histories/', import.meta.url));
const config = testConfig();
const db = testDb(config);
let env: TestWorkflowEnvironment;
let bundle: WorkflowBundleWithSourceMap;

beforeAll(async () => {
  env = await TestWorkflowEnvironment.createFromExistingServer({ address: config.temporal.address, namespace: config.temporal.namespace });
  bundle = await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: undefined });
});
afterAll(async () => {
  await env?.teardown();
  await db.destroy();
});

async function withWorker<T>(fn: () => Promise<T>): Promise<T> {
  const worker = await Worker.create({
    connection: env.nativeConnection,
    namespace: config.temporal.namespace,
    taskQueue: config.temporal.taskQueue,
    workflowBundle: bundle,
    activities: createActivities({ db, clock: systemClock, logger: silentLogger, billing: config.billing, invoicing: config.invoicing, reconcile: config.reconcile, retention: config.retention, privacy: { dsr: config.dsr, mail: config.mail, dataDir: config.dataDir } }),
  });
  return worker.runUntil(fn());
}

describe('healthProbe workflow', () => {
  it('runs on a worker whose activity reaches PostgreSQL', async () => {
    const result = await withWorker(() => runHealthProbe(env.client, config.temporal.taskQueue));
    expect(result.migrationsPending).toBe(0);
    expect(result.migrationsApplied).toBeGreaterThanOrEqual(4);
    expect(Number.isNaN(Date.parse(result.databaseTime))).toBe(false);

    const handle = env.client.workflow.getHandle(workflowIds.healthProbe(result.probeId));
    const history = await handle.fetchHistory();
    await Worker.runReplayHistory({ workflowBundle: bundle }, history, handle.workflowId);

    if (process.env.UPDATE_REPLAY_FIXTURES) {
      fs.mkdirSync(HISTORIES, { recursive: true });
      fs.writeFileSync(path.join(HISTORIES, 'healthProbe.json'), historyToJSON(history));
    }
  });
});

describe('accountMetering workflow (retired)', () => {
  it('settles its account once more at its next wake-up and completes', async () => {
    const accountId = (await accountsService({ db, clock: systemClock }).createAccount({ name: 'Metering WF' })).id;
    await insertUsageEvents(db, [{ account_id: accountId, occurred_at: new Date(), cost: '0.0000125' }]);
    const handle = await env.client.workflow.start(accountMetering, {
      taskQueue: config.temporal.taskQueue,
      workflowId: workflowIds.metering(accountId),
      args: [{ accountId, settleMinIntervalMs: 0, sweepMs: 86_400_000 }],
    });
    await withWorker(async () => {
      await handle.signal(usageRecordedSignal, { events: 1, cost: '0.0000125', lastOccurredAt: new Date().toISOString() });
      await handle.result();
    });
    expect((await handle.describe()).status.name).toBe('COMPLETED');
    expect(Number((await db('usage_events').where({ account_id: accountId }).whereNull('settled_at').count('* as n').first())!.n)).toBe(0);
    const history = await handle.fetchHistory();
    await Worker.runReplayHistory({ workflowBundle: bundle }, history, handle.workflowId);
    if (process.env.UPDATE_REPLAY_FIXTURES) {
      fs.writeFileSync(path.join(HISTORIES, 'accountMetering.json'), historyToJSON(history));
    }
  });
});

describe('invoiceAccount workflow', () => {
  // Invoice runs invoice in batches; this workflow is started by nothing today, but its history stays replayable.
  it('answers skipped for an account without billable usage, through its local activity', async () => {
    const accountId = (await accountsService({ db, clock: systemClock }).createAccount({ name: 'Invoice WF' })).id;
    const period = '2025-01';
    const result = await withWorker(() =>
      env.client.workflow.execute(invoiceAccount, {
        taskQueue: config.temporal.taskQueue,
        workflowId: workflowIds.invoice(accountId, period),
        args: [{ accountId, period, dryRun: false }],
      }),
    );
    expect(result).toMatchObject({ status: 'skipped' });
    const handle = env.client.workflow.getHandle(workflowIds.invoice(accountId, period));
    const history = await handle.fetchHistory();
    expect(history.events?.some((e) => e.activityTaskScheduledEventAttributes)).toBe(false);
    await Worker.runReplayHistory({ workflowBundle: bundle }, history, handle.workflowId);
    if (process.env.UPDATE_REPLAY_FIXTURES) fs.writeFileSync(path.join(HISTORIES, 'invoiceAccount.json'), historyToJSON(history));
  });
});

describe('settlementShard workflow', () => {
  it('settles the accounts its wake-ups name and continues as new, carrying its state, before the history grows long', async () => {
    const ops = accountsService({ db, clock: systemClock });
    const shard = 7;
    const handle = await env.client.workflow.start(settlementShard, {
      taskQueue: config.temporal.taskQueue,
      workflowId: workflowIds.settlement(shard, config.temporal.taskQueue),
      args: [{ shard, maxHistoryEvents: 40, minIntervalMs: 0, sweepMs: 86_400_000 }],
    });
    const firstRunId = handle.firstExecutionRunId;
    const accounts: string[] = [];
    await withWorker(async () => {
      // One wake-up per workflow task, each naming a new account, so the history grows past the cap.
      let state = await handle.query(settlementShardStatusQuery);
      for (let i = 0; i < 12; i++) {
        const accountId = (await ops.createAccount({ name: `Shard WF ${i}` })).id;
        accounts.push(accountId);
        await insertUsageEvents(db, [
          { account_id: accountId, occurred_at: new Date(), cost: '0.0000125' },
          { account_id: accountId, occurred_at: new Date(), cost: '0.0000125' },
        ]);
        await handle.signal(settlementWakeSignal, { events: 2, cost: '0.000025', lastOccurredAt: new Date().toISOString(), accounts: [accountId] });
        state = await eventually(
          async () => {
            const s = await handle.query(settlementShardStatusQuery);
            expect(s.eventsSettled).toBeGreaterThanOrEqual(2 * (i + 1));
            return s;
          },
          { timeoutMs: 15_000, intervalMs: 50, message: `wake-up ${i + 1} to be settled` },
        );
      }
      expect(state).toMatchObject({ shard, eventsSignalled: 24, eventsSettled: 24, costSettled: '0.0003', pendingAccounts: [], sweeps: 0 });
      expect(state.generation).toBeGreaterThan(0);
    });
    for (const accountId of accounts) {
      expect(await db('ledger_entries').where({ account_id: accountId, kind: 'usage' }).sum({ s: 'amount' }).first()).toEqual({ s: '-0.000025000000' });
    }
    const first = env.client.workflow.getHandle(handle.workflowId, firstRunId);
    const history = await first.fetchHistory();
    expect(history.events?.at(-1)?.workflowExecutionContinuedAsNewEventAttributes).toBeTruthy();
    await Worker.runReplayHistory({ workflowBundle: bundle }, history, handle.workflowId);
    // Ids, counts and amounts only.
    expect(JSON.stringify(history)).not.toContain('Shard WF');
    if (process.env.UPDATE_REPLAY_FIXTURES) {
      fs.writeFileSync(path.join(HISTORIES, 'settlementShard.json'), historyToJSON(history));
    }
    await handle.terminate('test done');
  });
});

describe('topUp workflow', () => {
  it('credits once however often it is started', async () => {
    const accountId = (await accountsService({ db, clock: systemClock }).createAccount({ name: 'TopUp WF' })).id;
    const paymentId = `pi_${Date.now()}`;
    const input = { paymentId, provider: 'stripe', accountId, amount: '12.34', currency: 'USD', kind: 'topup' as const, actor: 'test' };
    const result = await withWorker(async () => {
      const first = await env.client.workflow.execute(topUp, { taskQueue: config.temporal.taskQueue, workflowId: workflowIds.topUp(`stripe:${paymentId}`), args: [input] });
      const second = await env.client.workflow.execute(topUp, { taskQueue: config.temporal.taskQueue, workflowId: `${workflowIds.topUp(`stripe:${paymentId}`)}:again`, args: [input] });
      return { first, second };
    });
    expect(result.first.applied).toBe(true);
    expect(result.second).toMatchObject({ applied: false, entryId: result.first.entryId, balanceAfter: '12.34' });
    const handle = env.client.workflow.getHandle(workflowIds.topUp(`stripe:${paymentId}`));
    const history = await handle.fetchHistory();
    await Worker.runReplayHistory({ workflowBundle: bundle }, history, handle.workflowId);
    if (process.env.UPDATE_REPLAY_FIXTURES) fs.writeFileSync(path.join(HISTORIES, 'topUp.json'), historyToJSON(history));
  });

  it('fails at once, without retrying, for an account that does not exist', async () => {
    const input = { paymentId: `pi_${Date.now()}`, provider: 'stripe', accountId: '00000000-0000-4000-8000-000000000000', amount: '1', currency: 'USD', kind: 'topup' as const, actor: 'test' };
    const err = await withWorker(() =>
      env.client.workflow.execute(topUp, { taskQueue: config.temporal.taskQueue, workflowId: workflowIds.topUp(`stripe:${input.paymentId}`), args: [input] }).catch((e: unknown) => e),
    );
    expect(String((err as { cause?: { cause?: unknown } }).cause?.cause ?? err)).toMatch(/does not exist/);
  });
});

describe('replay of recorded histories', () => {
  const files = fs.existsSync(HISTORIES) ? fs.readdirSync(HISTORIES).filter((f) => f.endsWith('.json')) : [];

  it('has a recorded history for every exported workflow', async () => {
    const workflows = Object.keys(await import('../../workflows'));
    for (const name of workflows) expect(files, `test/replay/histories/${name}.json`).toContain(`${name}.json`);
  });

  it('replays every recorded history without nondeterminism', async () => {
    const histories = files.map((f) => ({
      workflowId: f,
      history: historyFromJSON(JSON.parse(fs.readFileSync(path.join(HISTORIES, f), 'utf8'))),
    }));
    const results = [];
    for await (const r of Worker.runReplayHistories({ workflowBundle: bundle }, histories)) results.push(r);
    expect(results).toHaveLength(files.length);
    for (const r of results) expect(r.error, r.workflowId).toBeUndefined();
  });
});
