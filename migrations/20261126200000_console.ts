import type { Knex } from 'knex';
import { checkIn } from './ddl';

/**
 * The staff console: staff users who sign in with email and password (bcrypt
 * hashes), server-side sessions (the cookie holds a random id; only its hash
 * is stored, with the session's CSRF token), and console sign-ins as login
 * records (console data under the privacy policy: time, IP, browser; expired
 * with login_records, covered by rights requests).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('staff_users', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.text('email').notNullable();
    t.text('name').notNullable();
    t.text('role').notNullable();
    t.text('password_hash').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('disabled_at', { useTz: true }).nullable();
  });
  await knex.raw(checkIn('staff_users', 'role', ['billing', 'compliance', 'admin']));
  await knex.raw(`CREATE UNIQUE INDEX staff_users_email ON staff_users (lower(email))`);

  await knex.schema.createTable('console_sessions', (t) => {
    t.text('id_hash').primary();
    t.uuid('staff_user_id').nullable().references('staff_users.id');
    t.uuid('staff_token_id').nullable();
    t.text('role').notNullable();
    t.text('csrf_token').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('expires_at', { useTz: true }).notNullable();
    t.timestamp('revoked_at', { useTz: true }).nullable();
  });

  await knex.raw(`ALTER TABLE login_records ALTER COLUMN user_id DROP NOT NULL, ADD COLUMN staff_user_id uuid NULL REFERENCES staff_users(id), ADD COLUMN staff_token_id uuid NULL`);
  await knex.raw(`ALTER TABLE security_events DROP CONSTRAINT security_events_kind_check`);
  await knex.raw(checkIn('security_events', 'kind', ['auth_failed', 'rate_limited', 'webhook_rejected', 'staff_auth_failed', 'console_login_failed']));
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE login_records DROP COLUMN staff_user_id, DROP COLUMN staff_token_id`);
  await knex.schema.dropTable('console_sessions');
  await knex.schema.dropTable('staff_users');
}
