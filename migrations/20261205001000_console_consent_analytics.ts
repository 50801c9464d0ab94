import type { Knex } from 'knex';

/**
 * Cookie and analytics consent in the customer console, and its first-party
 * page analytics (issue 26; docs/customer-console.md#cookies-and-analytics).
 *
 * - consent_records gains the privacy policy version the choice was made
 *   under and the optional categories agreed to (an empty list: strictly
 *   necessary cookies only). Console choices are rows of purpose 'cookies'.
 * - page_view_counts: page views counted per UTC day and page name, only for
 *   users who agreed to analytics. No user, session, address or device: the
 *   counts cannot be tied to anyone. The page is the route's name, never the
 *   URL a browser sent.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE consent_records
    ADD COLUMN policy_version text NULL CHECK (policy_version IS NULL OR length(policy_version) BETWEEN 1 AND 40),
    ADD COLUMN categories text[] NULL CHECK (categories IS NULL OR cardinality(categories) <= 8)`);
  await knex.raw(`CREATE TABLE page_view_counts (
    day   date   NOT NULL,
    page  text   NOT NULL CHECK (length(page) BETWEEN 1 AND 64),
    views bigint NOT NULL DEFAULT 0 CHECK (views >= 0),
    PRIMARY KEY (day, page)
  )`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`DROP TABLE page_view_counts`);
  await knex.raw(`ALTER TABLE consent_records DROP COLUMN categories, DROP COLUMN policy_version`);
}
