import type { Client } from '@temporalio/client';
import { usageRecordedSignal } from '../../workflows/messages';
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
  };
}
