import type { Knex } from 'knex';
import { checkIn, createdAt } from './ddl';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('staff_tokens', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.text('role').notNullable();
    t.text('name').nullable();
    t.text('token_hash').notNullable().unique();
    t.text('prefix').notNullable();
    createdAt(t, knex);
    t.timestamp('revoked_at', { useTz: true }).nullable();
  });
  await knex.raw(checkIn('staff_tokens', 'role', ['billing', 'compliance', 'admin']));
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('staff_tokens');
}
