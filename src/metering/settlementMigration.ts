import type { Client } from '@temporalio/client';
import { settlementWakeSignal, usageRecordedSignal, type SettlementShardInput } from '../../workflows/messages';
import { workflowIds } from '../temporal/conventions';
import { allShards } from './shards.rules';

export interface SettlementMigrationResult {
  /** Shard workflows woken with a sweep (started where none ran). */
  shards: number;
  /** Retired `metering:*` workflows found running on this task queue. */
  meteringRunning: number;
  /** Of those: woken to drain (settle their account once more and complete), or terminated. */
  drained: number;
  terminated: number;
  /** With `wait`: retired workflows still running when the wait ended (0 when all completed). */
  meteringLeft: number | null;
}

const RETIRED_RUNNING = (taskQueue: string) => `WorkflowType = 'accountMetering' AND ExecutionStatus = 'Running' AND TaskQueue = '${taskQueue.replace(/'/g, "''")}'`;

async function runningMetering(client: Client, taskQueue: string): Promise<string[]> {
  const ids: string[] = [];
  for await (const w of client.workflow.list({ query: RETIRED_RUNNING(taskQueue) })) ids.push(w.workflowId);
  return ids;
}

/**
 * Moves a deployment from per-account metering workflows to settlement
 * shards (`mixroute settlement migrate`). Safe to run any number of times,
 * and at any point of a rollout: usage_events is the truth, so whichever
 * workflow settles an event first settles it, once.
 *
 * 1. Every shard 0..shards-1 is started (signal-with-start) with a sweep: it
 *    settles every unsettled event of its accounts, whoever was meant to.
 * 2. Every running `accountMetering` on the task queue is woken: on workers
 *    of this version it settles its account once more and completes
 *    (RETIRED_PATCH). With `terminate` they are terminated instead, which
 *    loses nothing (the sweep settles their accounts).
 * 3. With `wait`, waits until none runs any more, up to `waitMs`.
 */
export async function migrateSettlement(
  client: Client,
  cfg: { taskQueue: string; shards: number; sweepMs: number; minIntervalMs: number },
  opts: { terminate?: boolean; wait?: boolean; waitMs?: number } = {},
): Promise<SettlementMigrationResult> {
  const now = new Date().toISOString();
  for (const shard of allShards(cfg.shards)) {
    const input: SettlementShardInput = { shard, sweepMs: cfg.sweepMs, minIntervalMs: cfg.minIntervalMs };
    await client.workflow.signalWithStart('settlementShard', {
      workflowId: workflowIds.settlement(shard, cfg.taskQueue),
      taskQueue: cfg.taskQueue,
      args: [input],
      signal: settlementWakeSignal,
      signalArgs: [{ events: 0, cost: '0', lastOccurredAt: now, sweep: true }],
    });
  }
  const running = await runningMetering(client, cfg.taskQueue);
  let drained = 0;
  let terminated = 0;
  for (const id of running) {
    const handle = client.workflow.getHandle(id);
    try {
      if (opts.terminate) {
        await handle.terminate('retired: settlement shards settle this account (mixroute settlement migrate)');
        terminated += 1;
      } else {
        await handle.signal(usageRecordedSignal, { events: 0, cost: '0', lastOccurredAt: now });
        drained += 1;
      }
    } catch (err) {
      // Completed between the listing and now: nothing left to do for it.
      if ((err as Error).name !== 'WorkflowNotFoundError') throw err;
    }
  }
  let meteringLeft: number | null = null;
  if (opts.wait) {
    const deadline = Date.now() + (opts.waitMs ?? 5 * 60_000);
    for (;;) {
      meteringLeft = (await runningMetering(client, cfg.taskQueue)).length;
      if (meteringLeft === 0 || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 1_000));
    }
  }
  return { shards: cfg.shards, meteringRunning: running.length, drained, terminated, meteringLeft };
}
