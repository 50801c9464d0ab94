import type { Knex } from 'knex';
import { checkIn } from './ddl';

/**
 * Reconciliation: reports, their discrepancies, and the providers' usage
 * statements that metering is checked against.
 *
 * A report's id is the first run id of the `reconcile` workflow that wrote it,
 * so a retried activity finds its report instead of opening a second one.
 * A discrepancy is unique per report and fingerprint (kind + subject, no
 * report id), so a retried check adds nothing, and a later report can say
 * whether a discrepancy is new or was reported before (`first_report_id`).
 * Discrepancies hold ids, token counts and amounts only: never personal data.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('reconciliation_reports', (t) => {
    t.uuid('id').primary();
    t.text('workflow_id').notNullable();
    t.text('scope').notNullable(); // day | period
    t.text('label').notNullable(); // 2026-11-25 | 2026-11
    t.timestamp('window_start', { useTz: true }).notNullable();
    t.timestamp('window_end', { useTz: true }).notNullable();
    t.text('trigger').notNullable(); // schedule | staff
    t.text('requested_by').notNullable();
    t.text('status').notNullable().defaultTo('running');
    t.text('verdict').nullable();
    t.integer('discrepancies').notNullable().defaultTo(0);
    t.integer('repaired').notNullable().defaultTo(0);
    t.integer('needs_attention').notNullable().defaultTo(0);
    t.integer('new_discrepancies').notNullable().defaultTo(0);
    t.jsonb('checks').notNullable().defaultTo('{}');
    t.timestamp('started_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('finished_at', { useTz: true }).nullable();
    t.index(['label', 'started_at']);
    t.index(['started_at']);
  });
  await knex.raw(checkIn('reconciliation_reports', 'scope', ['day', 'period']));
  await knex.raw(checkIn('reconciliation_reports', 'trigger', ['schedule', 'staff']));
  await knex.raw(checkIn('reconciliation_reports', 'status', ['running', 'finished']));
  await knex.raw(`ALTER TABLE reconciliation_reports ADD CONSTRAINT reconciliation_reports_verdict CHECK (verdict IS NULL OR verdict IN ('clean', 'repaired', 'needs_attention'))`);

  await knex.schema.createTable('reconciliation_discrepancies', (t) => {
    t.bigIncrements('id').primary();
    t.uuid('report_id').notNullable().references('reconciliation_reports.id');
    t.text('check_name').notNullable();
    t.text('kind').notNullable();
    t.text('fingerprint').notNullable();
    t.uuid('account_id').nullable();
    t.text('subject').notNullable();
    t.decimal('expected', 30, 12).nullable();
    t.decimal('actual', 30, 12).nullable();
    t.decimal('difference', 30, 12).nullable();
    t.text('unit').notNullable(); // USD | tokens | ...
    t.jsonb('details').notNullable().defaultTo('{}');
    t.text('resolution').notNullable(); // repaired | needs_attention
    t.text('repair_ref').nullable();
    t.uuid('first_report_id').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.unique(['report_id', 'fingerprint']);
    t.index(['fingerprint', 'id']);
  });
  await knex.raw(checkIn('reconciliation_discrepancies', 'check_name', ['usage', 'payments', 'balances', 'invoices', 'provider_usage']));
  await knex.raw(checkIn('reconciliation_discrepancies', 'resolution', ['repaired', 'needs_attention']));

  await knex.schema.createTable('provider_statements', (t) => {
    t.text('provider').notNullable();
    t.date('day').notNullable();
    t.text('model').notNullable(); // the provider's (upstream) model name
    t.bigInteger('input_tokens').notNullable(); // all input tokens, cached ones included
    t.bigInteger('cached_tokens').notNullable();
    t.bigInteger('output_tokens').notNullable();
    t.decimal('cost', 24, 12).notNullable();
    t.string('currency', 3).notNullable();
    t.text('source_sha256').notNullable();
    t.text('imported_by').notNullable();
    t.timestamp('imported_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.primary(['provider', 'day', 'model']);
  });
  await knex.raw(
    `ALTER TABLE provider_statements ADD CONSTRAINT provider_statements_counts CHECK (input_tokens >= 0 AND cached_tokens >= 0 AND cached_tokens <= input_tokens AND output_tokens >= 0 AND cost >= 0)`,
  );
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('provider_statements');
  await knex.schema.dropTable('reconciliation_discrepancies');
  await knex.schema.dropTable('reconciliation_reports');
}
