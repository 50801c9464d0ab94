/**
 * `--check`: PostgreSQL answers at DATABASE_URL's server.
 * `--migrate`: also create the DATABASE_URL database if missing and migrate it.
 * Failures are one line on stderr and exit code 1.
 */
import { loadConfig } from '../src/config';
import { checkPostgresReachable, ensureDatabase } from '../src/db/database';
import { createDb, redactDatabaseUrl } from '../src/db/knex';
import { migrateLatest } from '../src/db/migrate';

async function main(): Promise<void> {
  const config = loadConfig();
  const mode = process.argv.includes('--migrate') ? 'migrate' : 'check';
  if (mode === 'check') {
    await checkPostgresReachable(config.databaseUrl, config.databaseSsl);
    return;
  }
  const created = await ensureDatabase(config.databaseUrl, config.databaseSsl);
  if (created) console.error(`[bootstrap] created database ${redactDatabaseUrl(config.databaseUrl)}`);
  const db = createDb({ databaseUrl: config.databaseUrl, poolMax: 1, ssl: config.databaseSsl });
  try {
    const applied = await migrateLatest(db);
    if (applied.length) console.error(`[bootstrap] applied migrations: ${applied.join(', ')}`);
  } finally {
    await db.destroy();
  }
}

main().catch((err: unknown) => {
  console.error(`[bootstrap] ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
