import type { Knex } from 'knex';
import { checkIn } from './ddl';

/**
 * Reconciliation's `register` check (issue 25; docs/reconciliation.md):
 * reconciliation_discrepancies.check_name gains 'register' (the check in
 * src/reconciliation/checks/providersRegister.data.ts). It reads the window's
 * usage events by occurred_at, which the table is partitioned on: no index.
 */
const CHECKS = ['usage', 'payments', 'balances', 'invoices', 'provider_usage', 'invoice_payments'];

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE reconciliation_discrepancies DROP CONSTRAINT reconciliation_discrepancies_check_name_check`);
  await knex.raw(checkIn('reconciliation_discrepancies', 'check_name', [...CHECKS, 'register']));
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE reconciliation_discrepancies DROP CONSTRAINT reconciliation_discrepancies_check_name_check`);
  await knex.raw(checkIn('reconciliation_discrepancies', 'check_name', CHECKS));
}
