import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities, type ActivityDeps } from '../../activities';
import type { Config } from '../config';
import { temporalConnectOptions } from '../temporal/connection';

import { workflowCodeOptions } from './workflowBundle';

/** The workflow entry the worker bundles from the sources (tests bundle it too). */
export { WORKFLOWS_PATH } from './workflowBundle';

export interface WorkerHandle {
  worker: Worker;
  connection: NativeConnection;
}

export async function createWorker(
  config: Config,
  deps: ActivityDeps,
  overrides: Partial<WorkerOptions> = {},
): Promise<WorkerHandle> {
  const { namespace, ...options } = temporalConnectOptions(config);
  const connection = await NativeConnection.connect(options);
  const worker = await Worker.create({
    connection,
    namespace,
    taskQueue: config.temporal.taskQueue,
    // The prebuilt bundle when running from dist/, else bundled from the sources now.
    ...workflowCodeOptions(),
    activities: createActivities(deps),
    maxConcurrentWorkflowTaskExecutions: config.temporal.maxWorkflowTasks,
    maxConcurrentWorkflowTaskPolls: config.temporal.maxWorkflowTaskPolls,
    workflowThreadPoolSize: config.temporal.workflowThreads,
    ...overrides,
  });
  return { worker, connection };
}
