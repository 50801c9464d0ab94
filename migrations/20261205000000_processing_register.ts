import type { Knex } from 'knex';
import { checkIn } from './ddl';

/**
 * The processing register (issue 25; docs/processing-register.md): what we
 * process and why, and who receives it, as data compliance staff maintain.
 *
 * - processing_activities: a purpose with its legal basis, the categories of
 *   data subjects and of data, the systems, and the retention category
 *   (retention_policies) that governs it.
 * - recipients: every party that receives personal data: model providers (one
 *   row per providers row, linked), the payment processor, the email service,
 *   the hosting. Role, countries of processing (ISO 3166-1 alpha-2), transfer
 *   mechanism (with the date of the standard contractual clauses) and the
 *   agreement on file.
 * - register_changes: every change of either, with who, why, and the values
 *   before and after (vendor facts, never personal data).
 * - account_region_policies: an account limited to providers whose every
 *   country of processing lies in its allowed set.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`CREATE TABLE processing_activities (
    id                       uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    key                      text        NOT NULL UNIQUE CHECK (key ~ '^[a-z][a-z0-9_]{1,62}$'),
    purpose                  text        NOT NULL CHECK (length(purpose) BETWEEN 3 AND 500),
    legal_basis              text        NOT NULL,
    data_subject_categories  text[]      NOT NULL CHECK (cardinality(data_subject_categories) BETWEEN 1 AND 20),
    data_categories          text[]      NOT NULL CHECK (cardinality(data_categories) BETWEEN 1 AND 30),
    systems                  text[]      NOT NULL CHECK (cardinality(systems) BETWEEN 1 AND 20),
    retention_category       text        NULL REFERENCES retention_policies(category),
    created_at               timestamptz NOT NULL DEFAULT now(),
    updated_at               timestamptz NOT NULL DEFAULT now()
  )`);
  await knex.raw(checkIn('processing_activities', 'legal_basis', ['contract', 'legal_obligation', 'legitimate_interests', 'consent', 'vital_interests', 'public_task']));

  await knex.raw(`CREATE TABLE recipients (
    id                   uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    name                 text        NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 200),
    kind                 text        NOT NULL,
    provider_id          uuid        NULL UNIQUE REFERENCES providers(id),
    role                 text        NULL,
    countries            text[]      NOT NULL DEFAULT '{}' CHECK (cardinality(countries) <= 50),
    transfer_mechanism   text        NULL,
    scc_date             date        NULL,
    transfer_note        text        NULL CHECK (transfer_note IS NULL OR length(transfer_note) <= 1000),
    agreement_ref        text        NULL CHECK (agreement_ref IS NULL OR length(agreement_ref) <= 200),
    agreement_signed_on  date        NULL,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind = 'model_provider') = (provider_id IS NOT NULL)),
    CHECK (transfer_mechanism IS DISTINCT FROM 'standard_contractual_clauses' OR scc_date IS NOT NULL)
  )`);
  await knex.raw(checkIn('recipients', 'kind', ['model_provider', 'payment_processor', 'email_service', 'hosting', 'other']));
  await knex.raw(`ALTER TABLE recipients ADD CONSTRAINT recipients_role_check CHECK (role IS NULL OR role IN ('processor', 'sub_processor', 'independent_controller'))`);
  await knex.raw(
    `ALTER TABLE recipients ADD CONSTRAINT recipients_transfer_mechanism_check CHECK (transfer_mechanism IS NULL OR transfer_mechanism IN ('not_needed', 'adequacy_decision', 'standard_contractual_clauses', 'binding_corporate_rules', 'other_basis'))`,
  );

  await knex.raw(`CREATE TABLE register_changes (
    id           bigserial   PRIMARY KEY,
    entity_type  text        NOT NULL,
    entity_id    uuid        NOT NULL,
    action       text        NOT NULL,
    actor        text        NOT NULL,
    reason       text        NOT NULL CHECK (length(reason) BETWEEN 3 AND 500),
    before       jsonb       NULL,
    after        jsonb       NULL,
    changed_at   timestamptz NOT NULL DEFAULT now()
  )`);
  await knex.raw(checkIn('register_changes', 'entity_type', ['processing_activity', 'recipient', 'account_region_policy']));
  await knex.raw(checkIn('register_changes', 'action', ['created', 'updated', 'deleted']));
  await knex.raw(`CREATE INDEX register_changes_entity ON register_changes (entity_type, entity_id, changed_at)`);

  await knex.raw(`CREATE TABLE account_region_policies (
    account_id         uuid        PRIMARY KEY REFERENCES accounts(id),
    allowed_countries  text[]      NOT NULL CHECK (cardinality(allowed_countries) BETWEEN 1 AND 60),
    label              text        NULL CHECK (label IS NULL OR length(label) <= 40),
    updated_at         timestamptz NOT NULL DEFAULT now()
  )`);
}

export async function down(knex: Knex): Promise<void> {
  for (const t of ['account_region_policies', 'register_changes', 'recipients', 'processing_activities']) await knex.raw(`DROP TABLE ${t}`);
}
