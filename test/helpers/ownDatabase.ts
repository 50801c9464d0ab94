import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import type { Config } from '../../src/config';
import { dropDatabase, ensureDatabase } from '../../src/db/database';
import type { Db } from '../../src/db/knex';
import { migrateLatest } from '../../src/db/migrate';
import { testConfig, testDb } from './env';

/**
 * A database of a test file's own, for tests whose subject is the whole
 * database (reconciliation checks every balance, expiry drops partitions, an
 * invoice run invoices every account): other files' data must not show up
 * in them, nor their effects in other files.
 */
export function ownDatabaseUrl(purpose: string): string {
  const url = new URL(testConfig().databaseUrl);
  url.pathname = `/mixroute_test_${purpose}_${randomUUID().slice(0, 8)}`;
  return url.toString();
}

export interface OwnStack {
  db: Db;
  connection: Connection;
  client: Client;
}

/** Creates and migrates the config's database and connects to Temporal. */
export async function openOwnStack(config: Config): Promise<OwnStack> {
  await ensureDatabase(config.databaseUrl);
  const db = testDb(config);
  await migrateLatest(db);
  const connection = await Connection.connect({ address: config.temporal.address! });
  return { db, connection, client: new Client({ connection, namespace: config.temporal.namespace }) };
}

export async function closeOwnStack(config: Config, stack: Partial<OwnStack>): Promise<void> {
  await stack.connection?.close();
  await stack.db?.destroy();
  await dropDatabase(config.databaseUrl);
}
