import type { Client } from '@temporalio/client';
import { settlementWakeSignal, type SettlementShardInput } from '../../workflows/messages';
import { releaseAsyncHooks } from '../temporal/client';
import { workflowIds } from '../temporal/conventions';
import type { AccountSignaler } from './batcher';
import { isAccountId, shardOf } from './shards.rules';

/** The batcher's signal target for an account: its settlement shard, so a batch sends at most one signal per shard. */
export function shardSignalTarget(shards: number): (accountId: string) => string {
  // An id that is not a uuid never reached usage_events; should one come, its wake-up goes to shard 0
  // rather than stopping the batcher (a wake-up only says where to look).
  return (accountId) => String(isAccountId(accountId) ? shardOf(accountId, shards) : 0);
}

/**
 * Signal-with-start: wakes the settlement shard (the batcher's target is the
 * shard number; see shardSignalTarget), starting it if it is not running.
 */
export function settlementShardSignaler(client: Client, taskQueue: string, timing: { minIntervalMs: number; sweepMs: number }): AccountSignaler {
  return async (target, summary) => {
    const shard = Number(target);
    const input: SettlementShardInput = { shard, ...timing };
    try {
      await client.workflow.signalWithStart('settlementShard', {
        workflowId: workflowIds.settlement(shard, taskQueue),
        taskQueue,
        args: [input],
        signal: settlementWakeSignal,
        signalArgs: [summary],
      });
    } finally {
      // The client's connection check switched Node's async hooks on, whether or not the
      // signal went through; they tax every request of the gateway.
      releaseAsyncHooks(client.connection);
    }
  };
}
