import { randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import type { HealthProbeResult } from '../../workflows/messages';
import { workflowIds } from './conventions';

/** Runs the healthProbe workflow and waits for its result: proves a worker polls and reaches PostgreSQL. */
export async function runHealthProbe(client: Client, taskQueue: string, timeoutMs = 30_000): Promise<HealthProbeResult> {
  const probeId = randomUUID();
  const handle = await client.workflow.start('healthProbe', {
    taskQueue,
    workflowId: workflowIds.healthProbe(probeId),
    args: [{ probeId }],
    workflowExecutionTimeout: `${timeoutMs} ms`,
  });
  return (await handle.result()) as HealthProbeResult;
}
