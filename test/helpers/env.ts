import { randomUUID } from 'node:crypto';
import { inject } from 'vitest';
import { loadConfig, type Config } from '../../src/config';
import { createDb, type Db } from '../../src/db/knex';
import { createLogger } from '../../src/logger';

/** Config pointing at this run's test database and Temporal dev server. */
export function testConfig(overrides: Record<string, string> = {}): Config {
  return loadConfig({
    DATABASE_URL: inject('databaseUrl'),
    TEMPORAL_ADDRESS: inject('temporalAddress'),
    TEMPORAL_CLI: inject('temporalCli'),
    // Each test file gets its own task queue so workers of parallel files never take each other's tasks.
    TEMPORAL_TASK_QUEUE: `test-${randomUUID()}`,
    LOG_LEVEL: 'silent',
    ...overrides,
  });
}

/** Environment for child processes (the CLI, `mixroute dev`) aimed at the same test services. */
export function testEnv(config: Config, overrides: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  return {
    ...env,
    DATABASE_URL: config.databaseUrl,
    TEMPORAL_ADDRESS: config.temporal.address ?? '',
    TEMPORAL_CLI: config.temporal.cliPath ?? '',
    TEMPORAL_TASK_QUEUE: config.temporal.taskQueue,
    LOG_LEVEL: 'warn',
    ...overrides,
  };
}

export function testDb(config: Config): Db {
  return createDb({ databaseUrl: config.databaseUrl, poolMax: 5, applicationName: 'mixroute-test' });
}

export const silentLogger = createLogger({ logLevel: 'silent' }, 'test');
