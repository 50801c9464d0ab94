import type { Config } from '../config';
import { createDb } from '../db/knex';
import { closeServer, listen } from '../http/listen';
import { createLogger } from '../logger';
import { checkTemporal, createTemporalClient } from '../temporal/client';
import { createGatewayApp } from './app';

export async function startGatewayServer(config: Config) {
  const logger = createLogger(config, 'gateway');
  const db = createDb({ databaseUrl: config.databaseUrl, poolMax: config.databasePoolMax, applicationName: 'mixroute-gateway' });
  const temporal = createTemporalClient(config);
  const app = createGatewayApp({
    logger,
    readyCheckTimeoutMs: config.readyCheckTimeoutMs,
    readiness: {
      postgres: async () => void (await db.raw('SELECT 1')),
      temporal: () => checkTemporal(temporal.connection, config.readyCheckTimeoutMs),
    },
  });
  const { server, url } = await listen(app, config.gatewayPort, config.host);
  logger.info({ url }, `gateway listening on ${url}`);
  return {
    url,
    logger,
    async stop() {
      await closeServer(server);
      await temporal.close();
      await db.destroy();
    },
  };
}
