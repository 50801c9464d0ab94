import type { Knex } from 'knex';
import { checkIn } from './ddl';

/**
 * Data-subject requests (GDPR / UK GDPR / CCPA rights).
 *
 * - dsr_requests: one row per request, with its legal clock. The subject's
 *   email is here (it is what the request is about) and nowhere in Temporal.
 * - dsr_events: append-only trail of every transition and staff action
 *   (who, what, when); details hold codes and ids, not personal values.
 * - dsr_exports: access and portability packages, encrypted (AES-256-GCM),
 *   with an expiry and a download token stored as a hash; deleted on expiry.
 * - consent_records: append-only history of consents per user and purpose;
 *   users.marketing_consent mirrors the latest one.
 * - login_records: console logins (issue 9 writes them); kept here so access
 *   and deletion requests cover them.
 * - notification_outbox: messages to subjects and staff; a transport (file
 *   mailbox in dev and tests, SMTP in production) delivers them.
 * - erasure_evidence: what a deletion erased (counts per category), which
 *   outlives the data and never holds the erased values.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('dsr_requests', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.text('type').notNullable();
    t.text('status').notNullable().defaultTo('received');
    t.text('channel').notNullable(); // staff | subject
    t.text('subject_email').nullable(); // nulled when a deletion request closes
    t.text('subject_email_hash').notNullable(); // sha256 of the lower-cased email: finds a subject's earlier requests after erasure
    t.specificType('user_ids', 'uuid[]').notNullable().defaultTo('{}');
    t.uuid('account_id').nullable();
    t.text('jurisdiction').notNullable();
    t.timestamp('received_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.date('due_date').notNullable();
    t.timestamp('due_at', { useTz: true }).notNullable();
    t.timestamp('ack_due_at', { useTz: true }).nullable();
    t.timestamp('extension_notice_by', { useTz: true }).notNullable();
    t.boolean('extended').notNullable().defaultTo(false);
    t.text('extension_reason').nullable();
    t.timestamp('verified_at', { useTz: true }).nullable();
    t.text('verification_method').nullable();
    t.text('verification_code_hash').nullable();
    t.timestamp('verification_code_expires_at', { useTz: true }).nullable();
    t.integer('verification_attempts').notNullable().defaultTo(0);
    t.jsonb('requested_changes').nullable(); // correction: { field: new value }
    t.jsonb('refusals').notNullable().defaultTo('[]'); // [{ item, ground, explanation }]
    t.jsonb('response').nullable(); // the answer sent to the subject
    t.boolean('overdue').notNullable().defaultTo(false);
    t.timestamp('closed_at', { useTz: true }).nullable();
    t.text('created_by').notNullable();
    t.index(['status', 'due_at']);
    t.index(['received_at']);
  });
  await knex.raw(
    checkIn('dsr_requests', 'type', ['access', 'portability', 'correction', 'deletion', 'restriction', 'objection', 'consent_withdrawal', 'payload']),
  );
  await knex.raw(
    checkIn('dsr_requests', 'status', ['received', 'verifying', 'in_progress', 'awaiting_approval', 'completed', 'partially_completed', 'refused', 'withdrawn']),
  );
  await knex.raw(checkIn('dsr_requests', 'channel', ['staff', 'subject']));
  await knex.raw(checkIn('dsr_requests', 'jurisdiction', ['gdpr', 'uk_gdpr', 'ccpa', 'unknown']));
  await knex.raw(`CREATE INDEX dsr_requests_email_hash ON dsr_requests (subject_email_hash)`);

  await knex.schema.createTable('dsr_events', (t) => {
    t.bigIncrements('id').primary();
    t.uuid('request_id').notNullable().references('dsr_requests.id');
    t.timestamp('at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.text('actor').notNullable();
    t.text('action').notNullable();
    t.jsonb('detail').notNullable().defaultTo('{}');
    // Activities retry: one event per request and idempotency key.
    t.text('idempotency_key').notNullable();
    t.unique(['request_id', 'idempotency_key']);
  });
  await knex.raw(`
    CREATE FUNCTION dsr_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      RAISE EXCEPTION 'dsr_events is append-only' USING ERRCODE = 'restrict_violation';
    END $$`);
  await knex.raw(`CREATE TRIGGER dsr_events_no_update_delete BEFORE UPDATE OR DELETE OR TRUNCATE ON dsr_events FOR EACH STATEMENT EXECUTE FUNCTION dsr_events_append_only()`);

  await knex.schema.createTable('dsr_exports', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('request_id').notNullable().references('dsr_requests.id').unique();
    t.text('format').notNullable(); // json | zip
    t.binary('ciphertext').nullable(); // null once deleted
    t.binary('iv').notNullable();
    t.binary('auth_tag').notNullable();
    t.integer('bytes').notNullable();
    t.integer('downloads').notNullable().defaultTo(0);
    t.integer('max_downloads').notNullable();
    t.timestamp('expires_at', { useTz: true }).notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('deleted_at', { useTz: true }).nullable();
  });

  await knex.schema.createTable('consent_records', (t) => {
    t.bigIncrements('id').primary();
    t.uuid('user_id').notNullable().references('users.id');
    t.text('purpose').notNullable();
    t.boolean('granted').notNullable();
    t.text('source').notNullable(); // e.g. dsr:<id>, console
    t.timestamp('at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(['user_id', 'purpose', 'id']);
  });

  await knex.schema.createTable('login_records', (t) => {
    t.bigIncrements('id').primary();
    t.uuid('user_id').notNullable().references('users.id');
    t.timestamp('at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.specificType('source_ip', 'inet').nullable();
    t.text('user_agent').nullable();
    t.boolean('success').notNullable();
    t.index(['user_id', 'at']);
  });

  await knex.schema.createTable('notification_outbox', (t) => {
    t.bigIncrements('id').primary();
    t.text('idempotency_key').notNullable().unique();
    t.text('recipient').notNullable();
    t.text('subject').notNullable();
    t.text('body').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('sent_at', { useTz: true }).nullable();
  });

  await knex.schema.createTable('erasure_evidence', (t) => {
    t.bigIncrements('id').primary();
    t.uuid('request_id').notNullable().references('dsr_requests.id');
    t.text('category').notNullable();
    t.integer('rows').notNullable();
    t.text('action').notNullable(); // erased | pseudonymized | revoked | stripped | restricted
    t.timestamp('at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.unique(['request_id', 'category', 'action']);
  });

  await knex.raw(`ALTER TABLE users ADD COLUMN erased_at timestamptz NULL`);
  await knex.raw(`ALTER TABLE accounts ADD COLUMN processing_restricted boolean NOT NULL DEFAULT false`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE accounts DROP COLUMN processing_restricted`);
  await knex.raw(`ALTER TABLE users DROP COLUMN erased_at`);
  for (const t of ['erasure_evidence', 'notification_outbox', 'login_records', 'consent_records', 'dsr_exports']) await knex.schema.dropTable(t);
  await knex.raw('DROP TABLE dsr_events');
  await knex.raw('DROP FUNCTION dsr_events_append_only()');
  await knex.schema.dropTable('dsr_requests');
}
