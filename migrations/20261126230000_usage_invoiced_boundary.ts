import type { Knex } from 'knex';

/**
 * An invoiced boundary per account instead of marking every hourly row.
 *
 * Finalizing an invoice marked each usage_hourly row it consumed (~2,200 per
 * account-month): the largest statement of an invoice, and at 10,000
 * accounts the pages it dirtied made PostgreSQL IO-bound. Now:
 *
 * - usage_invoiced_boundaries: per account, the instant before which its
 *   usage is invoiced (the end of the latest period invoiced). invoice_id
 *   says which invoice moved it; no foreign key, because retention deletes
 *   old invoices and must not have to look here for each of them.
 * - usage_hourly.late: usage settled into an hour before its account's
 *   boundary (after that hour was invoiced) goes to a row of its own, which
 *   the next invoice consumes and marks with invoiced_by as before. The open
 *   key includes `late`, so such a row and the invoiced row of the same hour,
 *   model, provider and price version exist side by side.
 * - Usage not yet invoiced: invoiced_by IS NULL AND (late OR hour >=
 *   boundary). Non-late rows at or after the boundary are never marked.
 * - invoices.usage_from / usage_until: the hours of the account whose
 *   non-late rows the invoice consumed (the boundary it found, the period's
 *   end), so reconciliation and retention find them without invoiced_by.
 *   NULL on invoices from before this migration: their rows carry
 *   invoiced_by.
 * - An index on invoiced_by, cheap now that only late rows get it, for the
 *   readers that look rows up by invoice (reconciliation, retention).
 *
 * Existing rows stay as they are; the boundary of each account is the end of
 * its latest invoiced period, and the rows nobody invoiced before that
 * boundary (settled after their period was invoiced) become late rows.
 */
const PERIOD_END = `(((i.period || '-01')::timestamp + interval '1 month') AT TIME ZONE 'UTC')`;

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE usage_invoiced_boundaries (
      account_id uuid PRIMARY KEY REFERENCES accounts(id),
      invoiced_until timestamptz NOT NULL,
      invoice_id uuid NULL,
      updated_at timestamptz NOT NULL DEFAULT now()
    )`);
  await knex.raw(`ALTER TABLE invoices ADD COLUMN usage_from timestamptz NULL, ADD COLUMN usage_until timestamptz NULL`);
  await knex.raw(`ALTER TABLE usage_hourly ADD COLUMN late boolean NOT NULL DEFAULT false`);

  await knex.raw(`
    INSERT INTO usage_invoiced_boundaries (account_id, invoiced_until, invoice_id)
    SELECT DISTINCT ON (i.account_id) i.account_id, ${PERIOD_END}, i.id
      FROM invoices i
     WHERE i.kind = 'invoice' AND i.status IN ('finalized', 'void')
     ORDER BY i.account_id, ${PERIOD_END} DESC`);
  await knex.raw(`
    UPDATE usage_hourly u SET late = true
      FROM usage_invoiced_boundaries b
     WHERE u.account_id = b.account_id AND u.invoiced_by IS NULL AND u.hour < b.invoiced_until`);

  await knex.raw(`DROP INDEX usage_hourly_open_key`);
  await knex.raw(`CREATE UNIQUE INDEX usage_hourly_open_key ON usage_hourly (account_id, hour, model, provider, price_id, late) WHERE invoiced_by IS NULL`);
  await knex.raw(`CREATE INDEX usage_hourly_late_open ON usage_hourly (account_id, hour) WHERE late AND invoiced_by IS NULL`);
  await knex.raw(`CREATE INDEX usage_hourly_invoiced_by ON usage_hourly (invoiced_by) WHERE invoiced_by IS NOT NULL`);
}

export async function down(knex: Knex): Promise<void> {
  // Back to marking every row: the non-late rows each invoice consumed through the boundary get its id.
  await knex.raw(`
    UPDATE usage_hourly u SET invoiced_by = i.id
      FROM invoices i
     WHERE i.kind = 'invoice' AND i.usage_from IS NOT NULL
       AND u.account_id = i.account_id AND u.invoiced_by IS NULL AND NOT u.late
       AND u.hour >= i.usage_from AND u.hour < i.usage_until`);
  await knex.raw(`DROP INDEX usage_hourly_invoiced_by`);
  await knex.raw(`DROP INDEX usage_hourly_late_open`);
  await knex.raw(`DROP INDEX usage_hourly_open_key`);
  // Open late rows are all before their account's boundary and every open non-late row after it, so the old key holds.
  await knex.raw(`CREATE UNIQUE INDEX usage_hourly_open_key ON usage_hourly (account_id, hour, model, provider, price_id) WHERE invoiced_by IS NULL`);
  await knex.raw(`ALTER TABLE usage_hourly DROP COLUMN late`);
  await knex.raw(`ALTER TABLE invoices DROP COLUMN usage_from, DROP COLUMN usage_until`);
  await knex.raw(`DROP TABLE usage_invoiced_boundaries`);
}
