import type { Knex } from 'knex';
import { checkIn } from './ddl';

/**
 * Processor-mode requests (issue 25 part 5; docs/privacy-requests.md):
 * - account_privacy_contacts: the customer's privacy contact, one per account,
 *   with who set it, why and when (register_changes admits only register
 *   entities and region policies, so the audit is kept on the row itself).
 * - processor_requests: a request from someone who is not a user of any
 *   account, about a customer's API traffic; the answer we gave is stored.
 * - processor_forwards: the one forward of a request to the customer's
 *   stored contact, with its own deadline.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('account_privacy_contacts', (t) => {
    t.uuid('account_id').primary().references('accounts.id');
    t.text('email').notNullable();
    t.text('set_by').notNullable();
    t.text('reason').notNullable();
    t.timestamp('set_at', { useTz: true }).notNullable();
  });
  await knex.raw(`ALTER TABLE account_privacy_contacts ADD CONSTRAINT account_privacy_contacts_email_len CHECK (char_length(email) BETWEEN 3 AND 254)`);

  await knex.schema.createTable('processor_requests', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.text('reference').notNullable().unique();
    t.text('type').notNullable();
    t.text('channel').notNullable();
    t.text('subject_email').notNullable();
    t.text('jurisdiction').notNullable();
    // What the person named, as given (bounded by the service); the account it matched, if any.
    t.uuid('named_account_id').nullable();
    t.text('named_customer').nullable();
    t.uuid('account_id').nullable().references('accounts.id');
    t.text('outcome').notNullable();
    t.text('answer').notNullable();
    t.text('created_by').notNullable();
    t.timestamp('received_at', { useTz: true }).notNullable();
    t.index(['outcome', 'received_at']);
  });
  await knex.raw(checkIn('processor_requests', 'outcome', ['forwarded', 'customer_not_found', 'no_contact', 'not_named']));
  await knex.raw(checkIn('processor_requests', 'channel', ['staff', 'subject']));

  await knex.schema.createTable('processor_forwards', (t) => {
    t.uuid('request_id').primary().references('processor_requests.id');
    t.uuid('account_id').notNullable().references('accounts.id');
    t.text('forwarded_to').notNullable();
    t.timestamp('forwarded_at', { useTz: true }).notNullable();
    t.timestamp('due_at', { useTz: true }).notNullable();
    t.timestamp('closed_at', { useTz: true }).nullable();
    t.index(['due_at']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('processor_forwards');
  await knex.schema.dropTable('processor_requests');
  await knex.schema.dropTable('account_privacy_contacts');
}
