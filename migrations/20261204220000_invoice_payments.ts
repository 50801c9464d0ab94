import type { Knex } from 'knex';
import { checkIn } from './ddl';

/**
 * Payment status of postpaid invoices (issue 23, first slice; docs/collections.md).
 *
 * - invoice_payment_applications: money applied to one invoice, append-only
 *   (a trigger refuses UPDATE and DELETE). An invoice's amount paid is the sum
 *   of its applications. A bank transfer is recorded once per reference:
 *   UNIQUE (source, reference) makes a retried record find the first one.
 *   Only the part that was still due is applied; the rest of a transfer is
 *   credited to the account in the ledger (an adjustment keyed by the reference).
 * - invoice_write_offs: at most one per invoice (billing staff decided it will
 *   not be collected), with who, when and why, and the amount outstanding then.
 *   Also append-only. A finalized invoice row itself stays immutable, so the
 *   write-off lives here rather than in columns of `invoices`.
 * Like invoices, both are deleted only by retention expiry, with their invoice
 * (the triggers let a DELETE through under `SET LOCAL mixroute.retention = 'on'`).
 * The payment status is not stored: src/invoicing/paymentStatus.rules.ts
 * computes it from the invoice, its credit notes, applications and write-off.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('invoice_payment_applications', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('invoice_id').notNullable().references('invoices.id');
    t.uuid('account_id').notNullable().references('accounts.id');
    t.decimal('amount', 24, 12).notNullable();
    // What the transfer carried in total (amount applied here + the rest credited to the account).
    t.decimal('received_amount', 24, 12).notNullable();
    t.text('source').notNullable();
    t.text('reference').notNullable();
    t.date('paid_on').notNullable();
    t.text('recorded_by').notNullable();
    // The ledger entry that credited the rest of an overpayment (no FK: the ledger keeps its own retention).
    t.bigInteger('credit_entry_id').nullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.unique(['source', 'reference']);
    t.index(['invoice_id']);
    t.index(['account_id']);
  });
  await knex.raw(`ALTER TABLE invoice_payment_applications ADD CONSTRAINT invoice_payment_applications_amount_positive CHECK (amount > 0 AND received_amount >= amount)`);
  await knex.raw(checkIn('invoice_payment_applications', 'source', ['bank_transfer']));

  await knex.schema.createTable('invoice_write_offs', (t) => {
    t.uuid('invoice_id').primary().references('invoices.id');
    t.uuid('account_id').notNullable().references('accounts.id');
    t.decimal('amount', 24, 12).notNullable();
    t.text('reason').notNullable();
    t.text('written_off_by').notNullable();
    t.timestamp('written_off_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.raw(`ALTER TABLE invoice_write_offs ADD CONSTRAINT invoice_write_offs_amount_positive CHECK (amount > 0)`);

  await knex.raw(`
    CREATE FUNCTION collections_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      -- Retention expiry deletes them with their invoice (deleteInvoices in src/retention/retention.data.ts).
      IF TG_OP = 'DELETE' AND current_setting('mixroute.retention', true) = 'on' THEN RETURN OLD; END IF;
      RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'restrict_violation';
    END $$`);
  await knex.raw(`CREATE TRIGGER invoice_payment_applications_append_only BEFORE UPDATE OR DELETE ON invoice_payment_applications FOR EACH ROW EXECUTE FUNCTION collections_append_only()`);
  await knex.raw(`CREATE TRIGGER invoice_write_offs_append_only BEFORE UPDATE OR DELETE ON invoice_write_offs FOR EACH ROW EXECUTE FUNCTION collections_append_only()`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('invoice_write_offs');
  await knex.schema.dropTable('invoice_payment_applications');
  await knex.raw(`DROP FUNCTION collections_append_only()`);
}
