import { afterAll, describe, expect, it } from 'vitest';
import { migrations } from '../../migrations/index';
import { dropDatabase, ensureDatabase } from '../../src/db/database';
import { createDb, type Db } from '../../src/db/knex';
import { migrateLatest, migrationStatus, MIGRATION_LOCK_KEY } from '../../src/db/migrate';
import { eventually } from '../helpers/eventually';
import { ownDatabaseUrl } from '../helpers/ownDatabase';

/**
 * Two deploying instances migrate one fresh database at once: the advisory lock makes the
 * second wait for the first and then find nothing to do. (knex alone fails here: both
 * create its tables, and one dies on "duplicate key value violates unique constraint".)
 */
const ALL = migrations.map(([name]) => name);

/** A handle like `mixroute migrate` opens: a pool of one connection. */
const cliDb = (url: string, name: string): Db => createDb({ databaseUrl: url, poolMax: 1, applicationName: name });

async function appliedRows(db: Db): Promise<{ name: string; n: number }[]> {
  const { rows } = await db.raw<{ rows: { name: string; n: string }[] }>('SELECT name, count(*) AS n FROM knex_migrations GROUP BY name ORDER BY name');
  return rows.map((r) => ({ name: r.name, n: Number(r.n) }));
}

describe('migrations under the advisory lock', () => {
  const urls: string[] = [];
  const dbs: Db[] = [];
  const fresh = async (purpose: string) => {
    const url = ownDatabaseUrl(purpose);
    urls.push(url);
    await ensureDatabase(url);
    return url;
  };
  const open = (url: string, name: string) => {
    const db = cliDb(url, name);
    dbs.push(db);
    return db;
  };

  afterAll(async () => {
    for (const db of dbs) await db.destroy();
    for (const url of urls) await dropDatabase(url);
  });

  it('two migrators started at once on a fresh database both succeed; every migration is applied once, by one of them', async () => {
    const url = await fresh('migrate_race');
    const [a, b] = await Promise.all([migrateLatest(open(url, 'migrator-a')), migrateLatest(open(url, 'migrator-b'))]);

    const reports = [a, b].sort((x, y) => y.length - x.length);
    expect(reports[0]).toEqual(ALL);
    expect(reports[1]).toEqual([]);
    const check = open(url, 'check');
    expect(await appliedRows(check)).toEqual([...ALL].sort().map((name) => ({ name, n: 1 })));
    expect(await migrationStatus(check)).toEqual({ applied: ALL, pending: [] });
  });

  it('a migrator waits while another holds the lock, then finds nothing to do', async () => {
    const url = await fresh('migrate_wait');
    // A third session holds the lock, so both migrators must queue behind it, whatever the timing.
    const holder = open(url, 'holder');
    const check = open(url, 'check');
    const session = await holder.client.acquireConnection();
    try {
      await holder.raw('SELECT pg_advisory_lock(?::bigint)', [MIGRATION_LOCK_KEY]).connection(session);
      const waited: string[] = [];
      const runs = (['first', 'second'] as const).map((name) => migrateLatest(open(url, name), { onWaiting: () => waited.push(name) }));
      await eventually(
        async () => {
          const { rows } = await check.raw<{ rows: { n: string }[] }>(
            "SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
          );
          expect(Number(rows[0]!.n)).toBe(2);
        },
        { timeoutMs: 10_000, message: 'both migrators waiting for the lock' },
      );
      expect(waited.sort()).toEqual(['first', 'second']);
      // Nothing was created while they waited: not even knex's own tables.
      expect(await migrationStatus(check)).toEqual({ applied: [], pending: ALL });
      const { rows } = await check.raw<{ rows: { present: boolean }[] }>("SELECT to_regclass('knex_migrations') IS NOT NULL AS present");
      expect(rows[0]!.present).toBe(false);

      await holder.raw('SELECT pg_advisory_unlock(?::bigint)', [MIGRATION_LOCK_KEY]).connection(session);
      const reports = (await Promise.all(runs)).sort((x, y) => y.length - x.length);
      expect(reports).toEqual([ALL, []]);
      expect(await appliedRows(check)).toEqual([...ALL].sort().map((name) => ({ name, n: 1 })));
    } finally {
      await holder.client.releaseConnection(session);
    }
  });

  it('releases the lock when done, so the next migrator does not wait', async () => {
    const url = await fresh('migrate_release');
    expect(await migrateLatest(open(url, 'once'))).toEqual(ALL);
    let waited = false;
    expect(await migrateLatest(open(url, 'again'), { onWaiting: () => (waited = true) })).toEqual([]);
    expect(waited).toBe(false);
  });
});
