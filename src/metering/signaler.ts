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
    await client.workflow.signalWithStart('accountMetering', {
      workflowId: workflowIds.metering(accountId),
      taskQueue,
      args: [{ accountId, ...timing }],
      signal: usageRecordedSignal,
      signalArgs: [summary],
    });
    // The client's first call switched Node's async hooks on; they tax every request of the gateway.
    releaseAsyncHooks(client.connection);
  };
}
