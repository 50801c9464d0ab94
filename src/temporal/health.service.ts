import type { Db } from '../db/knex';
import { migrationStatus } from '../db/migrate';

export interface HealthDeps {
  db: Db;
}

export interface DatabaseHealth {
  databaseTime: string;
  migrationsApplied: number;
  migrationsPending: number;
}

/**
 * The database side of the health probe (`mixroute doctor` starts the
 * healthProbe workflow, src/temporal/healthProbe.ts): PostgreSQL answers, and
 * how many migrations are applied and pending.
 */
export function healthService({ db }: HealthDeps) {
  return {
    async checkDatabase(): Promise<DatabaseHealth> {
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

export type HealthService = ReturnType<typeof healthService>;
