import type { Knex } from 'knex';
import { checkIn } from './ddl';

/**
 * Collections, the accountants' export and a reconciliation check of payment
 * applications (issue 23; docs/collections.md, docs/reconciliation.md).
 *
 * - reconciliation_discrepancies.check_name gains 'invoice_payments' (the
 *   check in src/reconciliation/checks/invoicePayments.data.ts).
 * - Indexes for what both read by date, so an export pages through a period
 *   and a check reads a day without scanning whole tables: invoices by issue
 *   time, applications by the day paid and by when they were recorded,
 *   write-offs by when, and invoice.paid events by when.
 */
const CHECKS = ['usage', 'payments', 'balances', 'invoices', 'provider_usage'];

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE reconciliation_discrepancies DROP CONSTRAINT reconciliation_discrepancies_check_name_check`);
  await knex.raw(checkIn('reconciliation_discrepancies', 'check_name', [...CHECKS, 'invoice_payments']));
  await knex.raw(`CREATE INDEX invoices_issued_at ON invoices (issued_at, id) WHERE issued_at IS NOT NULL`);
  await knex.raw(`CREATE INDEX invoice_payment_applications_paid_on ON invoice_payment_applications (paid_on, id)`);
  await knex.raw(`CREATE INDEX invoice_payment_applications_created_at ON invoice_payment_applications (created_at)`);
  await knex.raw(`CREATE INDEX invoice_write_offs_written_off_at ON invoice_write_offs (written_off_at, invoice_id)`);
  await knex.raw(`CREATE INDEX account_events_invoice_paid ON account_events (occurred_at) WHERE type = 'invoice.paid'`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`DROP INDEX account_events_invoice_paid`);
  await knex.raw(`DROP INDEX invoice_write_offs_written_off_at`);
  await knex.raw(`DROP INDEX invoice_payment_applications_created_at`);
  await knex.raw(`DROP INDEX invoice_payment_applications_paid_on`);
  await knex.raw(`DROP INDEX invoices_issued_at`);
  await knex.raw(`ALTER TABLE reconciliation_discrepancies DROP CONSTRAINT reconciliation_discrepancies_check_name_check`);
  await knex.raw(checkIn('reconciliation_discrepancies', 'check_name', CHECKS));
}
