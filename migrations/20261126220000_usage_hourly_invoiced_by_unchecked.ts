import type { Knex } from 'knex';

/**
 * usage_hourly.invoiced_by loses its foreign key. Finalizing an invoice marks
 * every hourly row it consumed (~2,200 per account-month), and the key's check
 * ran once per row: half the time of that UPDATE, the largest part of an
 * invoice's cost in an invoice run. The reference is written only by the
 * invoice transaction, with the id it has just inserted, and removed only by
 * the retention expiry, which deletes the rows before their invoice; the
 * reconciliation re-prices every finalized invoice from the rows that name it.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE usage_hourly DROP CONSTRAINT IF EXISTS usage_hourly_invoiced_by_fkey`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE usage_hourly ADD CONSTRAINT usage_hourly_invoiced_by_fkey FOREIGN KEY (invoiced_by) REFERENCES invoices(id)`);
}
