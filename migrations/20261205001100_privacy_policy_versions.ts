import type { Knex } from 'knex';

/**
 * Privacy policy versions published by staff (issue 26;
 * docs/customer-console.md#policy-changes).
 *
 * - privacy_policy_versions: one row per published version. A material
 *   version shows signed-in customers a notice until they acknowledge it,
 *   and its publication emails every account's owners once.
 * - policy_acknowledgements: who acknowledged which version, once each.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`CREATE TABLE privacy_policy_versions (
    version      text        PRIMARY KEY CHECK (version ~ '^[0-9A-Za-z][0-9A-Za-z._-]{0,39}$'),
    title        text        NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    summary      text        NOT NULL CHECK (length(summary) BETWEEN 1 AND 4000),
    url          text        NULL CHECK (url IS NULL OR (length(url) <= 500 AND url ~ '^https://')),
    material     boolean     NOT NULL,
    published_at timestamptz NOT NULL DEFAULT now(),
    published_by text        NOT NULL CHECK (length(published_by) BETWEEN 1 AND 200)
  )`);
  await knex.raw(`CREATE INDEX privacy_policy_versions_published ON privacy_policy_versions (published_at DESC)`);
  await knex.raw(`CREATE TABLE policy_acknowledgements (
    user_id uuid        NOT NULL REFERENCES users(id),
    version text        NOT NULL REFERENCES privacy_policy_versions(version),
    at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, version)
  )`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`DROP TABLE policy_acknowledgements`);
  await knex.raw(`DROP TABLE privacy_policy_versions`);
}
