import type { Knex } from 'knex';
import { checkIn, createdAt, money } from './ddl';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('accounts', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.text('name').notNullable();
    t.string('country', 2).nullable(); // ISO 3166-1 alpha-2, upper case
    t.text('vat_id').nullable();
    t.text('tax_status').notNullable().defaultTo('standard');
    t.text('billing_email').nullable();
    t.text('plan').notNullable().defaultTo('prepaid');
    money(t, 'credit_limit').notNullable().defaultTo(0);
    t.string('currency', 3).notNullable().defaultTo('USD');
    t.text('status').notNullable().defaultTo('active');
    createdAt(t, knex);
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.raw(checkIn('accounts', 'plan', ['prepaid', 'postpaid']));
  await knex.raw(checkIn('accounts', 'status', ['active', 'suspended', 'closed']));
  await knex.raw(checkIn('accounts', 'tax_status', ['standard', 'exempt', 'reverse_charge']));
  await knex.raw(`ALTER TABLE accounts ADD CONSTRAINT accounts_credit_limit_check CHECK (credit_limit >= 0)`);

  await knex.schema.createTable('users', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('account_id').notNullable().references('accounts.id');
    t.text('name').notNullable();
    t.text('email').notNullable();
    t.text('phone').nullable();
    t.text('job_title').nullable();
    // Processing flags set by data-subject requests; the rest of the system honours them.
    t.boolean('processing_restricted').notNullable().defaultTo(false);
    t.boolean('objected').notNullable().defaultTo(false);
    t.boolean('marketing_consent').notNullable().defaultTo(false);
    createdAt(t, knex);
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(['account_id']);
  });
  await knex.raw(`CREATE UNIQUE INDEX users_account_email_unique ON users (account_id, lower(email))`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('users');
  await knex.schema.dropTable('accounts');
}
