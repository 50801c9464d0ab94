import { randomUUID } from 'node:crypto';
import { inject } from 'vitest';
import { loadConfig, type Config } from '../../src/config';
import { createDb, type Db } from '../../src/db/knex';
import { createLogger } from '../../src/logger';

/**
 * The fake providers listen on loopback, which the gateway refuses unless the
 * allowlist names it; metrics listeners take free ports so parallel files never collide.
 * `mixroute dev` runs without its demo (test/e2e/dev-demo.test.ts turns it on, on a database of its own).
 */
const TEST_SERVER_SETTINGS = { UPSTREAM_ALLOWED_HOSTS: '127.0.0.1', GATEWAY_METRICS_PORT: '0', ADMIN_METRICS_PORT: '0', DEV_DEMO: '0' };

/**
 * Files share one database, and a settlement shard's sweep settles every
 * account of its shard, other files' usage left unsettled on purpose too.
 * Wake-ups name their accounts, so without sweeps a file's shards settle only
 * that file's accounts; a test that sweeps uses a database of its own.
 */
const TEST_SETTLEMENT_SETTINGS = { SETTLE_SWEEP_MS: '86400000' };

/** Config pointing at this run's test database and Temporal dev server. */
export function testConfig(overrides: Record<string, string> = {}): Config {
  return loadConfig({
    DATABASE_URL: inject('databaseUrl'),
    TEMPORAL_ADDRESS: inject('temporalAddress'),
    TEMPORAL_CLI: inject('temporalCli'),
    // Each test file gets its own task queue so workers of parallel files never take each other's tasks.
    TEMPORAL_TASK_QUEUE: `test-${randomUUID()}`,
    LOG_LEVEL: 'silent',
    ...TEST_SERVER_SETTINGS,
    ...TEST_SETTLEMENT_SETTINGS,
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
    ...TEST_SERVER_SETTINGS,
    ...TEST_SETTLEMENT_SETTINGS,
    ...overrides,
  };
}

export function testDb(config: Config): Db {
  return createDb({ databaseUrl: config.databaseUrl, poolMax: 5, applicationName: 'mixroute-test' });
}

export const silentLogger = createLogger({ logLevel: 'silent' }, 'test');
