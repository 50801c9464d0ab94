import type { Knex } from 'knex';
import { checkIn } from './ddl';

/**
 * Metadata expiry.
 *
 * - retention_policies: one row per data category (period, unit, action,
 *   legal basis), seeded with the documented defaults; changes are audited in
 *   retention_policy_changes.
 * - legal_holds: an account under hold loses nothing to expiry; adding and
 *   releasing are recorded (who, when, why).
 * - retention_runs / retention_run_categories: what each run expired per
 *   category (cutoff, rows, partitions, rows kept back and why); no content.
 * - usage_events gets a DEFAULT partition: when a day's partition is dropped,
 *   the rows that must outlive it (held, unbilled) are moved there first.
 *   ensure_usage_events_partition no longer fails for a day that was
 *   expired while the default partition holds some of its rows.
 * - dsr_events stays append-only except for expiry of closed requests; the
 *   erasure evidence outlives the requests it proves (no foreign key).
 */
const POLICIES: [category: string, period: number, unit: string, action: string, basis: string][] = [
  ['usage_events.network', 7, 'days', 'minimise', 'Abuse prevention needs source addresses for days (legitimate interest, Art. 6(1)(f) GDPR): after that the IP is truncated (IPv4 /24, IPv6 /48) and the User-Agent removed; tokens and costs stay'],
  ['usage_events', 90, 'days', 'delete', 'Billing, support and disputes (contract, Art. 6(1)(b) GDPR); never before the period is invoiced and reconciled'],
  ['security_events', 365, 'days', 'delete', 'Security and abuse prevention (legitimate interest, Art. 6(1)(f) GDPR)'],
  ['login_records', 180, 'days', 'delete', 'Account security (legitimate interest, Art. 6(1)(f) GDPR)'],
  ['notification_outbox', 90, 'days', 'delete', 'Proof that a message was sent, for disputes (legitimate interest)'],
  ['dsr_packages', 30, 'days', 'delete', 'Access and portability packages exist for the subject to download; also deleted when their link expires'],
  ['dsr_requests', 730, 'days', 'delete', 'Accountability for how rights requests were handled (Art. 5(2) GDPR), counted from closing; erasure evidence is kept'],
  ['closed_accounts', 90, 'days', 'erase_contact', 'The contract has ended; contact data of closed accounts is erased after a grace period, billing records are kept as below'],
  ['invoices', 8, 'years_after_year_end', 'archive', 'German Commercial Code § 257(4) and Fiscal Code § 147(3): accounting vouchers 8 years from the end of the calendar year'],
  ['payments', 8, 'years_after_year_end', 'archive', 'German Fiscal Code § 147(3): records of business transactions 8 years from the end of the calendar year'],
  ['ledger_entries', 10, 'years_after_year_end', 'archive', 'German Commercial Code § 257(4): books of account 10 years from the end of the calendar year'],
];

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`CREATE TABLE usage_events_retained PARTITION OF usage_events DEFAULT`);
  // Minimisation finds what it has not done yet through a small partial index, not a scan of every partition.
  await knex.raw(`ALTER TABLE usage_events ADD COLUMN network_minimised boolean NOT NULL DEFAULT false`);
  await knex.raw(`CREATE INDEX usage_events_to_minimise ON usage_events (occurred_at) WHERE NOT network_minimised`);
  await knex.raw(`
    CREATE OR REPLACE FUNCTION ensure_usage_events_partition(day date) RETURNS text
    LANGUAGE plpgsql AS $$
    DECLARE
      part text := 'usage_events_' || to_char(day, 'YYYYMMDD');
    BEGIN
      IF to_regclass(part) IS NULL THEN
        BEGIN
          EXECUTE format(
            'CREATE TABLE %I PARTITION OF usage_events FOR VALUES FROM (%L) TO (%L)',
            part, day::text || ' 00:00:00+00', (day + 1)::text || ' 00:00:00+00');
        EXCEPTION WHEN duplicate_table OR unique_violation OR check_violation THEN
          -- check_violation: the day was expired and kept rows of it live in the
          -- default partition; new rows of that day go there too.
          NULL;
        END;
      END IF;
      RETURN part;
    END $$`);

  await knex.schema.createTable('retention_policies', (t) => {
    t.text('category').primary();
    t.integer('period').notNullable();
    t.text('unit').notNullable();
    t.text('action').notNullable();
    t.text('legal_basis').notNullable();
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.text('updated_by').notNullable().defaultTo('migration');
  });
  await knex.raw(checkIn('retention_policies', 'unit', ['days', 'years_after_year_end']));
  await knex.raw(checkIn('retention_policies', 'action', ['minimise', 'delete', 'erase_contact', 'archive']));
  await knex.raw(`ALTER TABLE retention_policies ADD CONSTRAINT retention_policies_period_positive CHECK (period > 0)`);
  await knex('retention_policies').insert(POLICIES.map(([category, period, unit, action, legal_basis]) => ({ category, period, unit, action, legal_basis })));

  await knex.schema.createTable('retention_policy_changes', (t) => {
    t.bigIncrements('id').primary();
    t.text('category').notNullable();
    t.integer('old_period').notNullable();
    t.integer('new_period').notNullable();
    t.text('changed_by').notNullable();
    t.text('reason').notNullable();
    t.timestamp('at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });

  await knex.schema.createTable('legal_holds', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('account_id').notNullable().references('accounts.id');
    t.text('reason').notNullable();
    t.text('created_by').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('released_at', { useTz: true }).nullable();
    t.text('released_by').nullable();
    t.text('release_reason').nullable();
    t.index(['account_id']);
  });

  await knex.schema.createTable('retention_runs', (t) => {
    t.uuid('id').primary(); // the metadataExpiry workflow's first run id
    t.text('workflow_id').notNullable();
    t.text('trigger').notNullable();
    t.text('requested_by').notNullable();
    t.text('status').notNullable().defaultTo('running');
    t.timestamp('started_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('finished_at', { useTz: true }).nullable();
  });
  await knex.schema.createTable('retention_run_categories', (t) => {
    t.uuid('run_id').notNullable().references('retention_runs.id');
    t.text('category').notNullable();
    t.timestamp('cutoff', { useTz: true }).notNullable();
    t.bigInteger('expired_rows').notNullable().defaultTo(0);
    t.integer('expired_partitions').notNullable().defaultTo(0);
    t.bigInteger('kept_hold').notNullable().defaultTo(0);
    t.bigInteger('kept_unbilled').notNullable().defaultTo(0);
    t.bigInteger('kept_other').notNullable().defaultTo(0);
    t.text('note').nullable();
    t.timestamp('started_at', { useTz: true }).notNullable();
    t.timestamp('finished_at', { useTz: true }).notNullable();
    t.primary(['run_id', 'category']);
  });

  await knex.raw(`
    CREATE OR REPLACE FUNCTION dsr_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP = 'DELETE' AND current_setting('mixroute.retention', true) = 'on' THEN
        RETURN NULL;
      END IF;
      RAISE EXCEPTION 'dsr_events is append-only' USING ERRCODE = 'restrict_violation';
    END $$`);
  await knex.raw(`ALTER TABLE erasure_evidence DROP CONSTRAINT erasure_evidence_request_id_foreign`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE erasure_evidence ADD CONSTRAINT erasure_evidence_request_id_foreign FOREIGN KEY (request_id) REFERENCES dsr_requests(id)`);
  for (const t of ['retention_run_categories', 'retention_runs', 'legal_holds', 'retention_policy_changes', 'retention_policies']) await knex.schema.dropTable(t);
  await knex.raw(`DROP INDEX usage_events_to_minimise`);
  await knex.raw(`ALTER TABLE usage_events DROP COLUMN network_minimised`);
  await knex.raw(`DROP TABLE usage_events_retained`);
}
