import { systemClock } from '../clock';
import type { Config } from '../config';
import { createDb } from '../db/knex';
import { closeServer, listen } from '../http/listen';
import { createMetricsRegistry, startMetricsServer } from '../http/metrics';
import { createLogger } from '../logger';
import { checkTemporal, createTemporalClient } from '../temporal/client';
import { createAdminApp } from './app';

export async function startAdminServer(config: Config) {
  const logger = createLogger(config, 'admin');
  const db = createDb({ databaseUrl: config.databaseUrl, poolMax: config.databasePoolMax, ssl: config.databaseSsl, applicationName: 'mixroute-admin', onWarning: (m) => logger.warn({ db: m }, 'database warning') });
  const temporal = createTemporalClient(config, logger);
  const app = createAdminApp({
    db,
    billing: config.billing,
    config,
    temporal: { client: temporal.client, taskQueue: config.temporal.taskQueue },
    clock: systemClock,
    logger,
    readyCheckTimeoutMs: config.readyCheckTimeoutMs,
    readiness: {
      postgres: async () => void (await db.raw('SELECT 1')),
      temporal: () => checkTemporal(temporal.connection, config.readyCheckTimeoutMs),
    },
  });
  const { server, url } = await listen(app, config.adminPort, config.host);
  const metricsServer = await startMetricsServer(createMetricsRegistry('admin'), config.metrics.adminPort, config.metrics.host);
  logger.info({ url, metricsUrl: metricsServer.url }, `admin API listening on ${url}, metrics on ${metricsServer.url}`);
  return {
    url,
    metricsUrl: metricsServer.url,
    logger,
    async stop() {
      await closeServer(server);
      await metricsServer.close();
      await temporal.close();
      await db.destroy();
    },
  };
}
