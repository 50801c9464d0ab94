import pg from 'pg';
import { DependencyUnavailableError } from '../errors';
import type { DatabaseSslSettings } from '../config';
import { pgSslOptions, redactDatabaseUrl } from './knex';

/** Splits a database URL into the maintenance URL (database `postgres`) and the database name. */
export function splitDatabaseUrl(databaseUrl: string): { adminUrl: string; database: string } {
  const u = new URL(databaseUrl);
  const database = decodeURIComponent(u.pathname.replace(/^\//, ''));
  if (!database) throw new Error(`DATABASE_URL names no database: ${redactDatabaseUrl(databaseUrl)}`);
  u.pathname = '/postgres';
  return { adminUrl: u.toString(), database };
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

async function withAdminClient<T>(databaseUrl: string, fn: (c: pg.Client) => Promise<T>, ssl?: DatabaseSslSettings): Promise<T> {
  const { adminUrl } = splitDatabaseUrl(databaseUrl);
  const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 5_000, ssl: pgSslOptions(ssl) });
  try {
    await client.connect();
  } catch (err) {
    const reason = err instanceof Error ? err.message || (err as { code?: string }).code : String(err);
    throw new DependencyUnavailableError(
      `PostgreSQL is unreachable at ${redactDatabaseUrl(databaseUrl)} (${reason}); start it (for example ` +
        `'pg_ctlcluster 15 main start' or 'brew services start postgresql') or set DATABASE_URL`,
    );
  }
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Creates the database named by the URL when it does not exist. Returns true if it was created. */
export async function ensureDatabase(databaseUrl: string, ssl?: DatabaseSslSettings): Promise<boolean> {
  const { database } = splitDatabaseUrl(databaseUrl);
  return withAdminClient(databaseUrl, async (client) => {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (found.rowCount) return false;
    try {
      await client.query(`CREATE DATABASE ${quoteIdent(database)}`);
    } catch (err) {
      // Two processes bootstrapping at once: the other one won.
      if ((err as { code?: string }).code === '42P04') return false;
      throw err;
    }
    return true;
  }, ssl);
}

/** Drops the database (used for per-run test databases). */
export async function dropDatabase(databaseUrl: string): Promise<void> {
  const { database } = splitDatabaseUrl(databaseUrl);
  await withAdminClient(databaseUrl, async (client) => {
    await client.query(`DROP DATABASE IF EXISTS ${quoteIdent(database)} WITH (FORCE)`);
  });
}

/** Checks PostgreSQL answers; throws DependencyUnavailableError with one clear line otherwise. */
export async function checkPostgresReachable(databaseUrl: string, ssl?: DatabaseSslSettings): Promise<void> {
  await withAdminClient(databaseUrl, async (client) => {
    await client.query('SELECT 1');
  }, ssl);
}
