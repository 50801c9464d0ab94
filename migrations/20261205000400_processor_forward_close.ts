import type { Knex } from 'knex';

/**
 * Processor-mode follow-up (docs/privacy-requests.md, "Requests about a
 * customer's API traffic"):
 * - processor_forwards gains who closed a forward and why (closed_at was
 *   there): all three set together or none.
 * - account_privacy_contact_changes: every change of an account's privacy
 *   contact, with who, why, the address before and after, and when
 *   (account_privacy_contacts keeps only the current value).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('processor_forwards', (t) => {
    t.text('closed_by').nullable();
    t.text('close_reason').nullable();
  });
  await knex.raw(`ALTER TABLE processor_forwards ADD CONSTRAINT processor_forwards_closed_together CHECK ((closed_at IS NULL) = (closed_by IS NULL) AND (closed_at IS NULL) = (close_reason IS NULL))`);
  await knex.raw(`ALTER TABLE processor_forwards ADD CONSTRAINT processor_forwards_close_reason_len CHECK (char_length(close_reason) BETWEEN 3 AND 500)`);

  await knex.schema.createTable('account_privacy_contact_changes', (t) => {
    t.bigIncrements('id').primary();
    t.uuid('account_id').notNullable().references('accounts.id');
    t.text('email_before').nullable();
    t.text('email_after').notNullable();
    t.text('changed_by').notNullable();
    t.text('reason').notNullable();
    t.timestamp('changed_at', { useTz: true }).notNullable();
    t.index(['account_id', 'id']);
  });
  // The current contacts' last change, so every contact has a history from the start.
  await knex.raw(`INSERT INTO account_privacy_contact_changes (account_id, email_before, email_after, changed_by, reason, changed_at)
    SELECT account_id, NULL, email, set_by, reason, set_at FROM account_privacy_contacts ORDER BY set_at`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('account_privacy_contact_changes');
  await knex.raw('ALTER TABLE processor_forwards DROP CONSTRAINT processor_forwards_close_reason_len');
  await knex.raw('ALTER TABLE processor_forwards DROP CONSTRAINT processor_forwards_closed_together');
  await knex.schema.alterTable('processor_forwards', (t) => {
    t.dropColumn('close_reason');
    t.dropColumn('closed_by');
  });
}
