import type { Client } from '@temporalio/client';
import { usageRecordedSignal } from '../../workflows/messages';
import { releaseAsyncHooks } from '../temporal/client';
import { workflowIds } from '../temporal/conventions';
import type { AccountSignaler } from './batcher';

/** Signal-with-start: wakes the account's metering workflow, starting it if it is not running. */
export function accountMeteringSignaler(
  client: Client,
  taskQueue: string,
  timing: { settleMinIntervalMs: number; sweepMs: number },
): AccountSignaler {
  return async (accountId, summary) => {
    try {
      await client.workflow.signalWithStart('accountMetering', {
        workflowId: workflowIds.metering(accountId),
        taskQueue,
        args: [{ accountId, ...timing }],
        signal: usageRecordedSignal,
        signalArgs: [summary],
      });
    } finally {
      // The client's connection check switched Node's async hooks on, whether or not the
      // signal went through; they tax every request of the gateway.
      releaseAsyncHooks(client.connection);
    }
  };
}
