import type { Knex } from 'knex';
import { migrations } from '../../migrations/index';
import { AppError } from '../errors';
import type { Db } from './knex';

class StaticMigrationSource implements Knex.MigrationSource<string> {
  async getMigrations(): Promise<string[]> {
    return migrations.map(([name]) => name);
  }
  getMigrationName(name: string): string {
    return name;
  }
  async getMigration(name: string): Promise<Knex.Migration> {
    const found = migrations.find(([n]) => n === name);
    if (!found) throw new Error(`unknown migration ${name}`);
    return found[1];
  }
}

const MIGRATIONS_TABLE = 'knex_migrations';

export const migrationConfig: Knex.MigratorConfig = {
  migrationSource: new StaticMigrationSource(),
  tableName: MIGRATIONS_TABLE,
};

/**
 * The key of the PostgreSQL advisory lock every migrator of a database takes
 * (an arbitrary constant, "MIXRMIGR" in ASCII, held per database). Advisory
 * locks live in PostgreSQL's lock manager, so this lock exists before any table
 * does, and the server releases it when the holding session ends, even if the
 * process was killed.
 */
export const MIGRATION_LOCK_KEY = '5569079524727539538';

/** This code's migrations are not all applied to the database it was pointed at. */
export class PendingMigrationsError extends AppError {
  override readonly status = 503;
  override readonly code = 'migrations_pending';
}

export interface MigrateOptions {
  /** Called once when another process holds the lock and this one starts waiting for it. */
  onWaiting?: () => void;
}

/**
 * Applies pending migrations under the advisory lock; returns the names
 * applied (empty when already current, including when another process applied
 * them while this one waited).
 *
 * knex's own lock (a row in knex_migrations_lock) does not serialise migrators
 * started at the same time on a fresh database: the tables that hold it are
 * created by check-then-create, so two processes both create them (one fails
 * with "relation already exists") or both insert a lock row; and when the lock
 * is taken, knex fails at once ("Migration table is already locked") instead
 * of waiting. Under the advisory lock the second migrator waits, then finds
 * nothing to do.
 */
export async function migrateLatest(db: Db, options: MigrateOptions = {}): Promise<string[]> {
  return withMigrationLock(db, options, async () => {
    const [, applied] = (await db.migrate.latest(migrationConfig)) as [number, string[]];
    return applied;
  });
}

/**
 * Runs `fn` holding the migration lock in a session of its own: a raw
 * connection outside the pool, so a pool of one connection (the CLI's) still
 * has it for the migrations, and lock and unlock happen in the same session.
 */
async function withMigrationLock<T>(db: Db, options: MigrateOptions, fn: () => Promise<T>): Promise<T> {
  const session = (await db.client.acquireRawConnection()) as {
    on(event: 'error', listener: (err: Error) => void): void;
  };
  let sessionError: Error | undefined;
  // A dropped connection emits 'error' on an idle client; unhandled, it would crash the process.
  session.on('error', (err) => (sessionError ??= err));
  try {
    const { rows } = await db.raw<{ rows: { locked: boolean }[] }>('SELECT pg_try_advisory_lock(?::bigint) AS locked', [MIGRATION_LOCK_KEY]).connection(session);
    if (!rows[0]?.locked) {
      options.onWaiting?.();
      await db.raw('SELECT pg_advisory_lock(?::bigint)', [MIGRATION_LOCK_KEY]).connection(session);
    }
    const result = await fn();
    // Losing the session lost the lock: what ran is committed (each migration is transactional),
    // but say so, so that the deploy step is run again rather than trusted.
    if (sessionError) throw new Error(`the migration lock's database session ended while migrating: ${sessionError.message.split('\n')[0]}; run the migrations again`);
    await db.raw('SELECT pg_advisory_unlock(?::bigint)', [MIGRATION_LOCK_KEY]).connection(session);
    return result;
  } finally {
    // Closing the session releases the lock too, whatever happened above.
    await db.client.destroyRawConnection(session).catch(() => undefined);
  }
}

/**
 * Applied and pending migrations, read without writing: knex's own listing
 * creates its tables when they are missing, which would race a migrator
 * creating them on a fresh database (and a status check must not change what
 * it looks at).
 */
export async function migrationStatus(db: Db): Promise<{ applied: string[]; pending: string[] }> {
  const { rows } = await db.raw<{ rows: { present: boolean }[] }>('SELECT to_regclass(?) IS NOT NULL AS present', [MIGRATIONS_TABLE]);
  const applied = rows[0]?.present ? (await db(MIGRATIONS_TABLE).orderBy('id').select<{ name: string }[]>('name')).map((r) => r.name) : [];
  const done = new Set(applied);
  return { applied, pending: migrations.map(([name]) => name).filter((name) => !done.has(name)) };
}
