import type { Knex } from 'knex';
import { migrations } from '../../migrations/index';
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

export const migrationConfig: Knex.MigratorConfig = {
  migrationSource: new StaticMigrationSource(),
  tableName: 'knex_migrations',
};

/** Applies pending migrations; returns the names applied (empty when already current). */
export async function migrateLatest(db: Db): Promise<string[]> {
  const [, applied] = (await db.migrate.latest(migrationConfig)) as [number, string[]];
  return applied;
}

export async function migrationStatus(db: Db): Promise<{ applied: string[]; pending: string[] }> {
  const [completed, pending] = (await db.migrate.list(migrationConfig)) as [
    { name: string }[] | string[],
    string[],
  ];
  return {
    applied: completed.map((c) => (typeof c === 'string' ? c : c.name)),
    pending: pending.map((p) => (typeof p === 'string' ? p : (p as { file: string }).file)),
  };
}
