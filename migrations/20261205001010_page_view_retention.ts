import type { Knex } from 'knex';

/**
 * Retention of the console's page view counts (issue 26;
 * docs/retention.md): page_view_counts rows go 13 months after their day,
 * enough to compare a month with the same month a year before.
 */
export async function up(knex: Knex): Promise<void> {
  await knex('retention_policies').insert({
    category: 'page_view_counts',
    period: 395,
    unit: 'days',
    action: 'delete',
    legal_basis: 'Consent to first-party page analytics (Art. 6(1)(a) GDPR, § 25(1) TDDDG); aggregated counts per page and day with nothing about a person, kept 13 months for year-on-year comparison',
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex('retention_policies').where({ category: 'page_view_counts' }).delete();
}
