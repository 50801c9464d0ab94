import type { Knex } from 'knex';

/** DDL pieces repeated across migrations. */

/** Money columns: NUMERIC with 12 decimal places, enough for sub-cent unit prices. */
export function money(t: Knex.CreateTableBuilder, name: string): Knex.ColumnBuilder {
  return t.decimal(name, 24, 12);
}

export function createdAt(t: Knex.CreateTableBuilder, knex: Knex): void {
  t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
}

/** A CHECK constraint restricting a text column to a fixed set of values. */
export function checkIn(table: string, column: string, values: readonly string[]): string {
  const list = values.map((v) => `'${v.replace(/'/g, "''")}'`).join(', ');
  return `ALTER TABLE ${table} ADD CONSTRAINT ${table}_${column}_check CHECK (${column} IN (${list}))`;
}
