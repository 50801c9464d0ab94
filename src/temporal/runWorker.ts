import { systemClock } from '../clock';
import { temporalAddress, type Config } from '../config';
import { createDb } from '../db/knex';
import { createLogger } from '../logger';
import { createWorker } from './worker';

/** Starts polling; `stop()` drains in-flight tasks and closes connections. */
export async function startWorker(config: Config) {
  const logger = createLogger(config, 'worker');
  const db = createDb({ databaseUrl: config.databaseUrl, poolMax: config.databasePoolMax, applicationName: 'mixroute-worker' });
  const { worker, connection } = await createWorker(config, { db, clock: systemClock, logger });
  const running = worker.run();
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
