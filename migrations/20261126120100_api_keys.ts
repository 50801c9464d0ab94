import type { Knex } from 'knex';
import { createdAt } from './ddl';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('api_keys', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('account_id').notNullable().references('accounts.id');
    t.uuid('user_id').nullable().references('users.id');
    t.text('name').nullable();
    // Only a SHA-256 of the key and a short display prefix are kept; the key is shown once.
    t.text('key_hash').notNullable().unique();
    t.text('prefix').notNullable();
    t.integer('rate_limit_rpm').nullable();
    createdAt(t, knex);
    t.timestamp('revoked_at', { useTz: true }).nullable();
    t.index(['account_id']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('api_keys');
}
