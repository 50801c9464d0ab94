import { DefaultLogger, Runtime, type LogLevel } from '@temporalio/worker';
import { systemClock } from '../clock';
import { temporalAddress, type Config } from '../config';
import { createDb } from '../db/knex';
import { createLogger } from '../logger';
import { connectTemporal } from '../temporal/client';
import { describeTemporalConnection } from '../temporal/connection';
import { checkTemporalSetup, runTemporalSetup } from '../temporal/setup';
import { createWorker } from './worker';
import { ensureWebhookDispatcher } from '../webhooks/dispatcher';

/** Starts polling; `stop()` drains in-flight tasks and closes connections. */
export async function startWorker(config: Config) {
  const logger = createLogger(config, 'worker');
  installSdkLogger(logger, config.logLevel === 'debug' || config.logLevel === 'trace' ? 'DEBUG' : 'WARN');
  const db = createDb({ databaseUrl: config.databaseUrl, poolMax: config.databasePoolMax, ssl: config.databaseSsl, applicationName: 'mixroute-worker', onWarning: (m) => logger.warn({ db: m }, 'database warning') });
  const { worker, connection } = await createWorker(config, { db, clock: systemClock, logger, billing: config.billing, invoicing: config.invoicing, reconcile: config.reconcile, retention: config.retention, privacy: { dsr: config.dsr, mail: config.mail, dataDir: config.dataDir }, webhooks: config.webhooks });
  const running = worker.run();
  await setUpTemporal(config, logger);
  logger.info(
    { ...describeTemporalConnection(config), taskQueue: config.temporal.taskQueue },
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
 * What the worker needs in Temporal besides its task queue. Outside production it
 * makes it: the search attributes and schedules (`mixroute temporal setup` without
 * the namespace), idempotently, so a plain `mixroute worker` against a dev server
 * has them. In production it creates nothing (that is the explicit `mixroute
 * temporal setup` step of a deployment): it checks and logs what is missing, once,
 * and serves all the same. Either way it makes sure the webhook dispatcher workflow
 * runs: that is a workflow of its own, not set-up. A failure is logged, not fatal.
 */
export async function setUpTemporal(config: Config, logger: Pick<ReturnType<typeof createLogger>, 'info' | 'warn' | 'error'>): Promise<void> {
  try {
    const { connection, client } = await connectTemporal(config);
    try {
      if (config.dev.production) {
        const r = await checkTemporalSetup(connection, client, config);
        if (!r.complete) {
          logger.warn(
            { namespace: r.namespace, missingSearchAttributes: r.searchAttributes.missing, missingSchedules: r.schedules.missing, outdatedSchedules: r.schedules.outdated },
            'Temporal set-up incomplete: run `mixroute temporal setup` (the worker creates nothing in production)',
          );
        }
      } else {
        const r = await runTemporalSetup(connection, client, config);
        if (r.namespace.status === 'missing') logger.warn({ namespace: r.namespace.name }, 'Temporal namespace missing: run `mixroute temporal setup --create-namespace`');
        else logger.info({ searchAttributesAdded: r.searchAttributes.added, schedulesCreated: r.schedules.created, schedulesUpdated: r.schedules.updated }, 'Temporal set-up ensured');
      }
      const dispatcher = await ensureWebhookDispatcher(client, config.temporal.taskQueue);
      logger.info({ dispatcher }, 'webhook dispatcher ensured');
    } finally {
      await connection.close();
    }
  } catch (err) {
    logger.error({ errType: (err as Error)?.name, err: (err as Error)?.message }, 'could not check or set up Temporal (search attributes, schedules, webhook dispatcher); will try again at the next start');
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
