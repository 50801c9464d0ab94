import type { Knex } from 'knex';

/**
 * Console sign-in at the trust boundary (issue 17, item 4).
 *
 * - console_sign_in_attempts: attempts per account identity (a SHA-256 of the
 *   lower-cased email, or a staff token's display prefix; never the email
 *   itself) in the current window, shared by every admin instance, so
 *   guessing one staff member's password from many addresses is throttled.
 *   A successful sign-in deletes the row; expired rows are deleted by later
 *   attempts.
 * - Indexes for ending a token's or a staff user's sessions when the token is
 *   revoked or the user disabled.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('console_sign_in_attempts', (t) => {
    t.text('identity').primary();
    t.timestamp('window_start', { useTz: true }).notNullable();
    t.integer('attempts').notNullable();
  });
  await knex.raw(`CREATE INDEX console_sign_in_attempts_window ON console_sign_in_attempts (window_start)`);
  await knex.raw(`CREATE INDEX console_sessions_open_by_token ON console_sessions (staff_token_id) WHERE revoked_at IS NULL`);
  await knex.raw(`CREATE INDEX console_sessions_open_by_user ON console_sessions (staff_user_id) WHERE revoked_at IS NULL`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`DROP INDEX console_sessions_open_by_user`);
  await knex.raw(`DROP INDEX console_sessions_open_by_token`);
  await knex.schema.dropTable('console_sign_in_attempts');
}
