import { fileURLToPath } from 'node:url';
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities, type ActivityDeps } from '../../activities';
import { temporalAddress, type Config } from '../config';

/** The workflow entry the worker bundles; workflows/ holds deterministic code only. */
export const WORKFLOWS_PATH = fileURLToPath(new URL('../../workflows/index.ts', import.meta.url));

export interface WorkerHandle {
  worker: Worker;
  connection: NativeConnection;
}

export async function createWorker(
  config: Config,
  deps: ActivityDeps,
  overrides: Partial<WorkerOptions> = {},
): Promise<WorkerHandle> {
  const connection = await NativeConnection.connect({ address: temporalAddress(config) });
  const worker = await Worker.create({
    connection,
    namespace: config.temporal.namespace,
    taskQueue: config.temporal.taskQueue,
    workflowsPath: WORKFLOWS_PATH,
    activities: createActivities(deps),
    maxConcurrentWorkflowTaskExecutions: config.temporal.maxWorkflowTasks,
    maxConcurrentWorkflowTaskPolls: config.temporal.maxWorkflowTaskPolls,
    workflowThreadPoolSize: config.temporal.workflowThreads,
    ...overrides,
  });
  return { worker, connection };
}
