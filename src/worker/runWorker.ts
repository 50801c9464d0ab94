import { DefaultLogger, Runtime, type LogLevel } from '@temporalio/worker';
import { systemClock } from '../clock';
import { temporalAddress, type Config } from '../config';
import { createDb } from '../db/knex';
import { createLogger } from '../logger';
import { Client, Connection } from '@temporalio/client';
import { ensureSchedules, productionSchedules } from '../temporal/schedules';
import { createWorker } from './worker';
import { ensureWebhookDispatcher } from '../webhooks/dispatcher';

/** Starts polling; `stop()` drains in-flight tasks and closes connections. */
export async function startWorker(config: Config) {
  const logger = createLogger(config, 'worker');
  installSdkLogger(logger, config.logLevel === 'debug' || config.logLevel === 'trace' ? 'DEBUG' : 'WARN');
  const db = createDb({ databaseUrl: config.databaseUrl, poolMax: config.databasePoolMax, applicationName: 'mixroute-worker', onWarning: (m) => logger.warn({ db: m }, 'database warning') });
  const { worker, connection } = await createWorker(config, { db, clock: systemClock, logger, billing: config.billing, invoicing: config.invoicing, reconcile: config.reconcile, retention: config.retention, privacy: { dsr: config.dsr, mail: config.mail, dataDir: config.dataDir }, webhooks: config.webhooks });
  const running = worker.run();
  await registerSchedules(config, logger);
  logger.info(
    { address: temporalAddress(config), namespace: config.temporal.namespace, taskQueue: config.temporal.taskQueue },
    `worker polling task queue ${config.temporal.taskQueue} on ${temporalAddress(config)}`,
  );
  return {
    logger,
    running,
    async stop() {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running;
      await connection.close();
      await db.destroy();
    },
  };
}

/**
 * The worker owns the schedules of the workflows it runs: registering them at
 * every start is idempotent (an existing schedule is updated to the declared
 * spec), so a deployment without `mixroute dev` gets them too. A failure is
 * logged, not fatal: the worker still serves everything else.
 */
async function registerSchedules(config: Config, logger: ReturnType<typeof createLogger>): Promise<void> {
  try {
    const connection = await Connection.connect({ address: temporalAddress(config) });
    try {
      const r = await ensureSchedules(new Client({ connection, namespace: config.temporal.namespace }), productionSchedules(config), config.temporal.taskQueue);
      logger.info({ created: r.created, updated: r.updated }, 'schedules registered');
      const dispatcher = await ensureWebhookDispatcher(new Client({ connection, namespace: config.temporal.namespace }), config.temporal.taskQueue);
      logger.info({ dispatcher }, 'webhook dispatcher ensured');
    } finally {
      await connection.close();
    }
  } catch (err) {
    logger.error({ errType: (err as Error)?.name, err: (err as Error)?.message }, 'could not register schedules; will try again at the next start');
  }
}

/**
 * Routes the SDK's own logs (bundler output, worker state, core warnings) into
 * our pino logger, at WARN by default so a worker's output is our log lines.
 */
function installSdkLogger(logger: ReturnType<typeof createLogger>, level: LogLevel): void {
  const levels: Record<LogLevel, 'trace' | 'debug' | 'info' | 'warn' | 'error'> = {
    TRACE: 'trace',
    DEBUG: 'debug',
    INFO: 'info',
    WARN: 'warn',
    ERROR: 'error',
  };
  Runtime.install({
    logger: new DefaultLogger(level, (entry) => logger[levels[entry.level]]({ sdk: entry.meta }, entry.message)),
  });
}
