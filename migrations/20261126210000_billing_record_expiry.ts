import type { Knex } from 'knex';
import { checkIn } from './ddl';

/**
 * Billing records leave at the end of their statutory period.
 *
 * - Invoices (with their lines, credit notes and the usage_hourly rows they
 *   consumed), payments and ledger entries may be deleted, and only by the
 *   retention schedule: the immutability triggers let a DELETE through when
 *   the transaction has said `SET LOCAL mixroute.retention = 'on'`. Nothing
 *   else changes: a finalized invoice still cannot be edited, an entry still
 *   cannot be updated.
 * - Expired ledger entries are replaced by one `carried_forward` entry per
 *   account for their sum, so a balance still equals the sum of its entries.
 * - retention_policies: invoices, payments and ledger entries now `delete`
 *   (they were `archive`: reported, never removed).
 * - dsr_kept_records: what a deletion request had to keep, per account and
 *   category, so that the schedule can finish the erasure when it may and
 *   append it to the request's trail: records the law keeps (until their
 *   period ends) and the subject's usage metadata (until it is invoiced and
 *   reconciled; subject_user_id says whose). Ids and counts only; no foreign
 *   key, because it outlives the request (closed requests expire after 24
 *   months, billing records after 8 or 10 years).
 * - retention_policies gains `usage_events.erased_subjects`: an erased
 *   subject's usage events go as soon as they are billed (period 0).
 */
/**
 * The immutability triggers, with or without the retention expiry's way
 * through (up installs them with it, down puts back the originals).
 */
const RETENTION_ON = `current_setting('mixroute.retention', true) = 'on'`;

function invoicesImmutable(retentionMayDelete: boolean): string {
  return `
    CREATE OR REPLACE FUNCTION invoices_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP = 'DELETE' THEN
        ${retentionMayDelete ? `IF ${RETENTION_ON} THEN RETURN OLD; END IF;` : ''}
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
    END $$`;
}

function invoiceLinesImmutable(retentionMayDelete: boolean): string {
  return `
    CREATE OR REPLACE FUNCTION invoice_lines_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE st text;
    BEGIN
      ${retentionMayDelete ? `IF TG_OP = 'DELETE' AND ${RETENTION_ON} THEN RETURN OLD; END IF;` : ''}
      SELECT status INTO st FROM invoices WHERE id = COALESCE(OLD.invoice_id, NEW.invoice_id);
      IF st IS DISTINCT FROM 'draft' THEN
        RAISE EXCEPTION 'the lines of a % invoice cannot change', st USING ERRCODE = 'restrict_violation';
      END IF;
      RETURN COALESCE(NEW, OLD);
    END $$`;
}

function ledgerAppendOnly(retentionMayDelete: boolean): string {
  return `
    CREATE OR REPLACE FUNCTION ledger_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      ${retentionMayDelete ? `IF TG_OP = 'DELETE' AND ${RETENTION_ON} THEN RETURN NULL; END IF;` : ''}
      RAISE EXCEPTION 'ledger_entries is append-only: correct an entry with a reversal'
        USING ERRCODE = 'restrict_violation';
    END $$`;
}

export async function up(knex: Knex): Promise<void> {
  await knex.raw(invoicesImmutable(true));
  await knex.raw(invoiceLinesImmutable(true));
  await knex.raw(ledgerAppendOnly(true));

  await knex.raw(`ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_kind_check`);
  await knex.raw(checkIn('ledger_entries', 'kind', ['topup', 'grant', 'usage', 'refund', 'adjustment', 'reversal', 'carried_forward']));
  await knex.raw(`ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_contra_check`);
  await knex.raw(checkIn('ledger_entries', 'contra', ['cash', 'revenue', 'promotions', 'adjustments', 'carried_forward']));

  await knex('retention_policies').whereIn('category', ['invoices', 'payments', 'ledger_entries']).update({ action: 'delete' });

  await knex.schema.createTable('dsr_kept_records', (t) => {
    t.uuid('request_id').notNullable();
    t.uuid('account_id').notNullable();
    t.text('category').notNullable();
    t.integer('rows').notNullable();
    t.uuid('subject_user_id').nullable();
    t.timestamp('kept_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('erased_at', { useTz: true }).nullable();
    t.primary(['request_id', 'account_id', 'category']);
  });
  await knex.raw(`CREATE INDEX dsr_kept_records_open ON dsr_kept_records (category) WHERE erased_at IS NULL`);
  // Period 0 for this one category ("as soon as billed"); staff still set periods of at least 1 (the CLI and API check).
  await knex.raw(`ALTER TABLE retention_policies DROP CONSTRAINT retention_policies_period_positive`);
  await knex.raw(`ALTER TABLE retention_policies ADD CONSTRAINT retention_policies_period_positive CHECK (period > 0 OR category = 'usage_events.erased_subjects')`);
  await knex('retention_policies').insert({
    category: 'usage_events.erased_subjects',
    period: 0,
    unit: 'days',
    action: 'delete',
    legal_basis: 'Right to erasure (Art. 17 GDPR): usage metadata of a subject who asked for deletion is kept only until it is invoiced and reconciled (contract and legal obligation, Art. 17(3)(b)), then deleted',
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex('retention_policies').where({ category: 'usage_events.erased_subjects' }).delete();
  await knex.raw(`ALTER TABLE retention_policies DROP CONSTRAINT retention_policies_period_positive`);
  await knex.raw(`ALTER TABLE retention_policies ADD CONSTRAINT retention_policies_period_positive CHECK (period > 0)`);
  await knex.schema.dropTable('dsr_kept_records');
  await knex('retention_policies').whereIn('category', ['invoices', 'payments', 'ledger_entries']).update({ action: 'archive' });
  await knex.raw(`ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_contra_check`);
  await knex.raw(checkIn('ledger_entries', 'contra', ['cash', 'revenue', 'promotions', 'adjustments']));
  await knex.raw(`ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_kind_check`);
  await knex.raw(checkIn('ledger_entries', 'kind', ['topup', 'grant', 'usage', 'refund', 'adjustment', 'reversal']));
  await knex.raw(ledgerAppendOnly(false));
  await knex.raw(invoiceLinesImmutable(false));
  await knex.raw(invoicesImmutable(false));
}
