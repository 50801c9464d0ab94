import type { Knex } from 'knex';
import { checkIn } from './ddl';

/**
 * Invoicing.
 *
 * - invoices: one per account and period (a partial unique index), numbered
 *   from a gapless per-series sequence allocated in the finalizing
 *   transaction; finalized invoices are immutable (a trigger), except for
 *   being voided by a credit note (an invoice row of kind credit_note that
 *   references it).
 * - usage_hourly gains `invoiced_by`: rows an invoice consumed. Settlement
 *   only adds to rows not yet invoiced, so usage that arrives after its
 *   period was invoiced lands in a new row and is billed, once, as late
 *   usage on the next invoice.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('tax_rates', (t) => {
    t.string('country', 2).notNullable();
    t.decimal('rate', 8, 6).notNullable();
    t.date('effective_from').notNullable();
    t.date('effective_to').nullable();
    t.primary(['country', 'effective_from']);
  });
  await knex.raw(`ALTER TABLE tax_rates ADD CONSTRAINT tax_rates_rate_range CHECK (rate >= 0 AND rate < 1)`);

  await knex.schema.createTable('invoice_sequences', (t) => {
    t.text('series').primary();
    t.bigInteger('next_number').notNullable().defaultTo(1);
  });

  await knex.schema.createTable('invoices', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.text('kind').notNullable().defaultTo('invoice');
    t.uuid('account_id').notNullable().references('accounts.id');
    t.text('period').notNullable();
    t.text('status').notNullable().defaultTo('draft');
    t.text('series').notNullable();
    t.text('number').nullable().unique();
    t.text('plan').notNullable();
    t.string('currency', 3).notNullable();
    t.decimal('subtotal', 24, 12).notNullable();
    t.decimal('tax_rate', 8, 6).notNullable();
    t.decimal('tax_amount', 24, 12).notNullable();
    t.decimal('total', 24, 12).notNullable();
    t.decimal('credits_applied', 24, 12).notNullable();
    t.decimal('amount_due', 24, 12).notNullable();
    t.text('tax_kind').notNullable();
    t.text('tax_note').nullable();
    // What the invoice was addressed to, as it was: an invoice must not change when the account does.
    t.jsonb('customer').notNullable();
    t.jsonb('issuer').notNullable();
    t.timestamp('issued_at', { useTz: true }).nullable();
    t.date('due_date').nullable();
    t.uuid('voids_invoice_id').nullable().references('invoices.id');
    t.uuid('voided_by').nullable().references('invoices.id');
    t.text('void_reason').nullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(['period']);
    t.index(['account_id', 'period']);
  });
  await knex.raw(checkIn('invoices', 'kind', ['invoice', 'credit_note']));
  await knex.raw(checkIn('invoices', 'status', ['draft', 'finalized', 'void']));
  await knex.raw(`CREATE UNIQUE INDEX invoices_one_per_account_period ON invoices (account_id, period) WHERE kind = 'invoice'`);
  await knex.raw(`CREATE UNIQUE INDEX invoices_one_credit_note_per_invoice ON invoices (voids_invoice_id) WHERE kind = 'credit_note'`);

  await knex.schema.createTable('invoice_lines', (t) => {
    t.uuid('invoice_id').notNullable().references('invoices.id');
    t.integer('position').notNullable();
    t.text('description').notNullable();
    t.text('model').notNullable();
    t.text('kind').notNullable();
    t.bigInteger('quantity').notNullable();
    t.decimal('unit_price_per_mtok', 24, 12).notNullable();
    t.decimal('amount', 24, 12).notNullable();
    t.boolean('late').notNullable().defaultTo(false);
    t.text('usage_period').notNullable();
    t.primary(['invoice_id', 'position']);
  });

  // A finalized invoice is immutable; the only change allowed is voiding it.
  await knex.raw(`
    CREATE FUNCTION invoices_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP = 'DELETE' THEN
        IF OLD.status <> 'draft' THEN RAISE EXCEPTION 'invoice % is % and cannot be deleted', OLD.number, OLD.status USING ERRCODE = 'restrict_violation'; END IF;
        RETURN OLD;
      END IF;
      IF OLD.status = 'finalized' AND NOT (
           NEW.status = 'void'
           AND (to_jsonb(NEW) - ARRAY['status','voided_by','void_reason']) = (to_jsonb(OLD) - ARRAY['status','voided_by','void_reason'])) THEN
        RAISE EXCEPTION 'invoice % is finalized and immutable: void it with a credit note', OLD.number USING ERRCODE = 'restrict_violation';
      END IF;
      IF OLD.status = 'void' THEN
        RAISE EXCEPTION 'invoice % is void and immutable', OLD.number USING ERRCODE = 'restrict_violation';
      END IF;
      RETURN NEW;
    END $$`);
  await knex.raw(`CREATE TRIGGER invoices_immutable BEFORE UPDATE OR DELETE ON invoices FOR EACH ROW EXECUTE FUNCTION invoices_immutable()`);
  await knex.raw(`
    CREATE FUNCTION invoice_lines_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE st text;
    BEGIN
      SELECT status INTO st FROM invoices WHERE id = COALESCE(OLD.invoice_id, NEW.invoice_id);
      IF st IS DISTINCT FROM 'draft' THEN
        RAISE EXCEPTION 'the lines of a % invoice cannot change', st USING ERRCODE = 'restrict_violation';
      END IF;
      RETURN COALESCE(NEW, OLD);
    END $$`);
  await knex.raw(`CREATE TRIGGER invoice_lines_immutable BEFORE UPDATE OR DELETE ON invoice_lines FOR EACH ROW EXECUTE FUNCTION invoice_lines_immutable()`);

  // usage_hourly: rows not yet invoiced are unique per key; invoiced rows are history.
  await knex.raw(`ALTER TABLE usage_hourly ADD COLUMN id bigserial, ADD COLUMN invoiced_by uuid NULL REFERENCES invoices(id)`);
  await knex.raw(`ALTER TABLE usage_hourly DROP CONSTRAINT usage_hourly_pkey`);
  await knex.raw(`ALTER TABLE usage_hourly ADD PRIMARY KEY (id)`);
  await knex.raw(`CREATE UNIQUE INDEX usage_hourly_open_key ON usage_hourly (account_id, hour, model, provider, price_id) WHERE invoiced_by IS NULL`);
  await knex.raw(`CREATE INDEX usage_hourly_uninvoiced ON usage_hourly (account_id, hour) WHERE invoiced_by IS NULL`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`DROP INDEX usage_hourly_uninvoiced`);
  await knex.raw(`DROP INDEX usage_hourly_open_key`);
  await knex.raw(`ALTER TABLE usage_hourly DROP CONSTRAINT usage_hourly_pkey`);
  await knex.raw(`ALTER TABLE usage_hourly DROP COLUMN invoiced_by, DROP COLUMN id`);
  await knex.raw(`ALTER TABLE usage_hourly ADD PRIMARY KEY (account_id, hour, model, provider, price_id)`);
  await knex.raw(`DROP TABLE invoice_lines`);
  await knex.raw(`DROP TABLE invoices`);
  await knex.raw(`DROP FUNCTION invoice_lines_immutable()`);
  await knex.raw(`DROP FUNCTION invoices_immutable()`);
  await knex.schema.dropTable('invoice_sequences');
  await knex.schema.dropTable('tax_rates');
}
