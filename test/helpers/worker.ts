import { bundleWorkflowCode, Worker, NativeConnection, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { createActivities } from '../../activities';
import { systemClock } from '../../src/clock';
import type { Config } from '../../src/config';
import type { Db } from '../../src/db/knex';
import { WORKFLOWS_PATH } from '../../src/worker/worker';
import { silentLogger } from './env';

let bundle: Promise<WorkflowBundleWithSourceMap> | undefined;
/** The workflow bundle, built once per test file. */
export function workflowBundle(): Promise<WorkflowBundleWithSourceMap> {
  bundle ??= bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH });
  return bundle;
}

/** The production activities on the test's config and database (webhook settings included), with the system clock. */
export function testActivities(config: Config, db: Db) {
  return createActivities({
    db,
    clock: systemClock,
    logger: silentLogger,
    billing: config.billing,
    invoicing: config.invoicing,
    reconcile: config.reconcile,
    retention: config.retention,
    privacy: { dsr: config.dsr, mail: config.mail, dataDir: config.dataDir },
    webhooks: config.webhooks,
  });
}

/** Runs a real worker on the config's task queue while `fn` runs. */
export async function withTestWorker<T>(config: Config, db: Db, fn: () => Promise<T>): Promise<T> {
  const connection = await NativeConnection.connect({ address: config.temporal.address! });
  try {
    const worker = await Worker.create({
      connection,
      namespace: config.temporal.namespace,
      taskQueue: config.temporal.taskQueue,
      workflowBundle: await workflowBundle(),
      activities: testActivities(config, db),
    });
    return await worker.runUntil(fn());
  } finally {
    await connection.close();
  }
}
