import type { Knex } from 'knex';

/**
 * Which kinds of recipient take part in a processing activity (GDPR article
 * 30(1)(d); docs/processing-register.md): the record of processing names, per
 * activity, only the recipients of those kinds. NULL: not stated, and the
 * record names every recipient (a superset, never an omission); '{}': the
 * activity discloses data to no recipient.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE processing_activities ADD COLUMN recipient_kinds text[] NULL
    CHECK (recipient_kinds IS NULL OR recipient_kinds <@ ARRAY['model_provider', 'payment_processor', 'email_service', 'hosting', 'other']::text[])`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE processing_activities DROP COLUMN recipient_kinds`);
}
