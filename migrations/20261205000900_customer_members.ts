import type { Knex } from 'knex';
import { checkIn } from './ddl';

/**
 * Members of an account in the customer console (issue 26;
 * docs/customer-console.md#members).
 *
 * - customer_invitations: an owner invites an address with a role; only the
 *   token's hash is kept. At most one open invitation per account and
 *   address. Accepting creates (or re-admits) the account's user with that
 *   email and role.
 * - users.console_removed_at: an owner removed the member; they cannot sign
 *   in (password, link or invitation of the past) until invited again. The
 *   user row stays: it is the subject's record, kept and erased by the
 *   privacy rules like any other.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`CREATE TABLE customer_invitations (
    id               uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id       uuid        NOT NULL REFERENCES accounts(id),
    email            text        NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    console_role     text        NOT NULL,
    token_hash       text        NOT NULL UNIQUE CHECK (length(token_hash) BETWEEN 1 AND 200),
    invited_by       uuid        NOT NULL REFERENCES users(id),
    created_at       timestamptz NOT NULL DEFAULT now(),
    expires_at       timestamptz NOT NULL,
    accepted_at      timestamptz NULL,
    accepted_user_id uuid        NULL REFERENCES users(id),
    revoked_at       timestamptz NULL
  )`);
  await knex.raw(checkIn('customer_invitations', 'console_role', ['owner', 'admin', 'developer', 'billing']));
  await knex.raw(`CREATE UNIQUE INDEX customer_invitations_one_open ON customer_invitations (account_id, lower(email)) WHERE accepted_at IS NULL AND revoked_at IS NULL`);
  await knex.raw(`CREATE INDEX customer_invitations_by_account ON customer_invitations (account_id, created_at DESC)`);
  await knex.raw(`ALTER TABLE users ADD COLUMN console_removed_at timestamptz NULL`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE users DROP COLUMN console_removed_at`);
  await knex.raw(`DROP TABLE customer_invitations`);
}
