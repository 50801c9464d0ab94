import type { Client } from '@temporalio/client';
import { usageRecordedSignal } from '../../workflows/messages';
import { workflowIds } from '../temporal/conventions';
import type { AccountSignaler } from './batcher';

/** Signal-with-start: wakes the account's metering workflow, starting it if it is not running. */
export function accountMeteringSignaler(client: Client, taskQueue: string): AccountSignaler {
  return async (accountId, summary) => {
    await client.workflow.signalWithStart('accountMetering', {
      workflowId: workflowIds.metering(accountId),
      taskQueue,
      args: [{ accountId }],
      signal: usageRecordedSignal,
      signalArgs: [summary],
    });
  };
}
