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
    activities: createActivities({ db, clock: systemClock, logger: silentLogger, billing: config.billing }),
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
    const accountId = `acct-${Date.now()}`;
    const handle = await env.client.workflow.start(accountMetering, {
      taskQueue: config.temporal.taskQueue,
      workflowId: workflowIds.metering(accountId),
      args: [{ accountId, maxHistoryEvents: 30 }],
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
