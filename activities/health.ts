import type { Db } from '../src/db/knex';
import { migrationStatus } from '../src/db/migrate';

export function healthActivities({ db }: { db: Db }) {
  return {
    async checkDatabase(): Promise<{ databaseTime: string; migrationsApplied: number; migrationsPending: number }> {
      const { rows } = await db.raw<{ rows: { now: Date }[] }>('SELECT now() AS now');
      const status = await migrationStatus(db);
      return {
        databaseTime: rows[0]!.now.toISOString(),
        migrationsApplied: status.applied.length,
        migrationsPending: status.pending.length,
      };
    },
  };
}
