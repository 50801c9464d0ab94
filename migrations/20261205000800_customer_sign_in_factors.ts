import type { Knex } from 'knex';
import { checkIn } from './ddl';

/**
 * The customer console's second factor and one-time sign-in links (issue 26;
 * docs/customer-console.md#signing-in).
 *
 * - user_totp: a user's TOTP secret, sealed (AES-256-GCM) with the console's
 *   key, never stored in clear. confirmed_at is set once the user has entered
 *   a code from their app; until then the factor is not required.
 *   last_step is the last accepted time step, so a code is accepted once.
 * - user_recovery_codes: only a hash of each code; used_at marks a spent one.
 * - customer_login_links: one-time sign-in links sent by email; only the
 *   token's hash is kept; a link is spent (used_at) on first use.
 * - customer_sessions.pending_second_factor: a session that has passed the
 *   password or the link but not yet the second factor; it reaches only the
 *   second-factor form.
 * - security_events: failed second factors are recorded like failed sign-ins.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`CREATE TABLE user_totp (
    user_id      uuid        PRIMARY KEY REFERENCES users(id),
    ciphertext   bytea       NOT NULL,
    iv           bytea       NOT NULL,
    auth_tag     bytea       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    confirmed_at timestamptz NULL,
    last_step    bigint      NULL
  )`);
  await knex.raw(`CREATE TABLE user_recovery_codes (
    id         bigserial   PRIMARY KEY,
    user_id    uuid        NOT NULL REFERENCES users(id),
    code_hash  text        NOT NULL CHECK (length(code_hash) BETWEEN 1 AND 200),
    created_at timestamptz NOT NULL DEFAULT now(),
    used_at    timestamptz NULL,
    UNIQUE (user_id, code_hash)
  )`);
  await knex.raw(`CREATE TABLE customer_login_links (
    token_hash text        PRIMARY KEY CHECK (length(token_hash) BETWEEN 1 AND 200),
    user_id    uuid        NOT NULL REFERENCES users(id),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz NULL
  )`);
  await knex.raw(`CREATE INDEX customer_login_links_by_user ON customer_login_links (user_id, created_at DESC)`);
  await knex.raw(`ALTER TABLE customer_sessions ADD COLUMN pending_second_factor boolean NOT NULL DEFAULT false`);

  await knex.raw(`ALTER TABLE security_events DROP CONSTRAINT security_events_kind_check`);
  await knex.raw(checkIn('security_events', 'kind', ['auth_failed', 'rate_limited', 'webhook_rejected', 'staff_auth_failed', 'console_login_failed', 'customer_login_failed', 'customer_second_factor_failed']));
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`DELETE FROM security_events WHERE kind = 'customer_second_factor_failed'`);
  await knex.raw(`ALTER TABLE security_events DROP CONSTRAINT security_events_kind_check`);
  await knex.raw(checkIn('security_events', 'kind', ['auth_failed', 'rate_limited', 'webhook_rejected', 'staff_auth_failed', 'console_login_failed', 'customer_login_failed']));
  await knex.raw(`ALTER TABLE customer_sessions DROP COLUMN pending_second_factor`);
  await knex.raw(`DROP TABLE customer_login_links`);
  await knex.raw(`DROP TABLE user_recovery_codes`);
  await knex.raw(`DROP TABLE user_totp`);
}
