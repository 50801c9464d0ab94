import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities } from '../../activities';
import { systemClock } from '../../src/clock';
import { workflowIds } from '../../src/temporal/conventions';
import { accountMetering } from '../../workflows/accountMetering';
import { topUp } from '../../workflows/topUp';
import { staffOperations } from '../../src/staff/operations';
import { meteringStatusQuery, usageRecordedSignal } from '../../workflows/messages';
import { runHealthProbe } from '../../src/temporal/healthProbe';
import { WORKFLOWS_PATH } from '../../src/temporal/worker';
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

describe('accountMetering workflow', () => {
  it('folds signals into its state and continues as new with it before the history grows long', async () => {
    const accountId = (await staffOperations({ db, clock: systemClock }).createAccount({ name: 'Metering WF' })).id;
    const handle = await env.client.workflow.start(accountMetering, {
      taskQueue: config.temporal.taskQueue,
      workflowId: workflowIds.metering(accountId),
      args: [{ accountId, maxHistoryEvents: 40, settleMinIntervalMs: 0 }],
    });
    const firstRunId = handle.firstExecutionRunId;
    await withWorker(async () => {
      // One signal per workflow task, so the history grows past the cap of 30 events.
      let state = await handle.query(meteringStatusQuery);
      for (let i = 0; i < 12; i++) {
        await handle.signal(usageRecordedSignal, { events: 2, cost: '0.0000125', lastOccurredAt: `2026-11-26T10:00:${String(i).padStart(2, '0')}.000Z` });
        while (state.signals < i + 1) state = await handle.query(meteringStatusQuery);
      }
      expect(state).toMatchObject({ signals: 12, eventsSignalled: 24, costSignalled: '0.00015', lastOccurredAt: '2026-11-26T10:00:11.000Z' });
      // No usage events exist for this account: settlement ran and found nothing.
      expect(state.eventsSettled).toBe(0);
      expect(state.generation).toBeGreaterThan(0);
    });
    const first = env.client.workflow.getHandle(handle.workflowId, firstRunId);
    const history = await first.fetchHistory();
    expect(history.events?.at(-1)?.workflowExecutionContinuedAsNewEventAttributes).toBeTruthy();
    await Worker.runReplayHistory({ workflowBundle: bundle }, history, handle.workflowId);
    if (process.env.UPDATE_REPLAY_FIXTURES) {
      fs.writeFileSync(path.join(HISTORIES, 'accountMetering.json'), historyToJSON(history));
    }
    await handle.terminate('test done');
  });
});

describe('topUp workflow', () => {
  it('credits once however often it is started', async () => {
    const accountId = (await staffOperations({ db, clock: systemClock }).createAccount({ name: 'TopUp WF' })).id;
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
