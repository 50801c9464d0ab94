import type { Knex } from 'knex';
import { checkIn } from './ddl';

/**
 * The customer console at /app (issue 26, first slice).
 *
 * - users.password_hash: a bcrypt hash; null means the user cannot sign in
 *   with a password (set one with `mixroute users set-password`).
 * - users.console_role: what the user may do in the console (owner, admin,
 *   developer, billing).
 * - customer_sessions: like console_sessions. The cookie holds a random id;
 *   only its hash is stored, with the session's CSRF token, a bounded
 *   User-Agent and a coarse address prefix for "where you are signed in".
 * - Failed sign-ins throttle through console_sign_in_attempts (keyed by a
 *   hash of the email, prefixed `customer:`) and are recorded as security
 *   events of the new kind customer_login_failed.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE users ADD COLUMN password_hash text NULL, ADD COLUMN console_role text NOT NULL DEFAULT 'developer'`);
  await knex.raw(checkIn('users', 'console_role', ['owner', 'admin', 'developer', 'billing']));

  await knex.schema.createTable('customer_sessions', (t) => {
    t.text('id_hash').primary();
    t.uuid('user_id').notNullable().references('users.id');
    t.uuid('account_id').notNullable().references('accounts.id');
    t.text('csrf_token').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('expires_at', { useTz: true }).notNullable();
    t.timestamp('revoked_at', { useTz: true }).nullable();
    t.string('user_agent', 512).nullable();
    t.text('ip_prefix').nullable();
  });
  await knex.raw(`CREATE INDEX customer_sessions_open_by_user ON customer_sessions (user_id) WHERE revoked_at IS NULL`);

  await knex.raw(`ALTER TABLE security_events DROP CONSTRAINT security_events_kind_check`);
  await knex.raw(checkIn('security_events', 'kind', ['auth_failed', 'rate_limited', 'webhook_rejected', 'staff_auth_failed', 'console_login_failed', 'customer_login_failed']));
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`DELETE FROM security_events WHERE kind = 'customer_login_failed'`);
  await knex.raw(`ALTER TABLE security_events DROP CONSTRAINT security_events_kind_check`);
  await knex.raw(checkIn('security_events', 'kind', ['auth_failed', 'rate_limited', 'webhook_rejected', 'staff_auth_failed', 'console_login_failed']));
  await knex.schema.dropTable('customer_sessions');
  await knex.raw(`ALTER TABLE users DROP CONSTRAINT users_console_role_check, DROP COLUMN console_role, DROP COLUMN password_hash`);
}
