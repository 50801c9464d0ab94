import fs from 'node:fs';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { loadConfig } from '../src/config';
import { dropDatabase, ensureDatabase } from '../src/db/database';
import { createDb } from '../src/db/knex';
import { migrateLatest } from '../src/db/migrate';
import { findTemporalCli, startDevServer } from '../src/temporal/devServer';
import { freePort } from '../src/util/ports';

declare module 'vitest' {
  export interface ProvidedContext {
    databaseUrl: string;
    temporalAddress: string;
    temporalCli: string;
  }
}

/**
 * Once per run: a fresh database (migrated, dropped afterwards) and one
 * headless Temporal dev server on a free port, shared by every integration
 * test file. Files keep apart by creating their own accounts, task queues
 * and workflow ids.
 */
export default async function setup(project: TestProject) {
  const base = loadConfig();
  const url = new URL(base.databaseUrl);
  url.pathname = `/mixroute_test_${Date.now()}_${process.pid}`;
  const databaseUrl = url.toString();
  await ensureDatabase(databaseUrl);
  const db = createDb({ databaseUrl, poolMax: 1 });
  try {
    await migrateLatest(db);
  } finally {
    await db.destroy();
  }

  const logDir = path.resolve('.data');
  fs.mkdirSync(logDir, { recursive: true });
  const temporalCli = findTemporalCli(base.temporal.cliPath);
  const server = await startDevServer({
    cliPath: temporalCli,
    port: await freePort(),
    logFile: path.join(logDir, 'test-temporal.log'),
  });

  project.provide('databaseUrl', databaseUrl);
  project.provide('temporalAddress', server.address);
  project.provide('temporalCli', temporalCli);

  return async () => {
    await server.stop();
    if (process.env.KEEP_TEST_DB) return;
    await dropDatabase(databaseUrl);
  };
}
