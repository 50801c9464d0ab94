import type { Knex } from 'knex';
import { checkIn, createdAt, money } from './ddl';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('providers', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.text('name').notNullable().unique();
    t.text('base_url').notNullable();
    // The NAME of the environment variable that holds the credential, never the credential.
    t.text('api_key_env').nullable();
    t.text('kind').notNullable().defaultTo('openai');
    createdAt(t, knex);
  });
  await knex.raw(checkIn('providers', 'kind', ['openai', 'anthropic']));

  await knex.schema.createTable('models', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.text('public_name').notNullable().unique();
    t.uuid('provider_id').notNullable().references('providers.id');
    t.text('upstream_model').notNullable();
    t.boolean('active').notNullable().defaultTo(true);
    createdAt(t, knex);
  });

  // Price history: invoices need the price in force when the usage happened.
  await knex.schema.createTable('prices', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('model_id').notNullable().references('models.id');
    t.string('currency', 3).notNullable().defaultTo('USD');
    money(t, 'input_per_mtok').notNullable();
    money(t, 'cached_input_per_mtok').nullable();
    money(t, 'output_per_mtok').notNullable();
    t.timestamp('effective_from', { useTz: true }).notNullable();
    createdAt(t, knex);
    t.unique(['model_id', 'effective_from']);
  });
  await knex.raw(
    `ALTER TABLE prices ADD CONSTRAINT prices_non_negative CHECK (
       input_per_mtok >= 0 AND output_per_mtok >= 0 AND coalesce(cached_input_per_mtok, 0) >= 0)`,
  );
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('prices');
  await knex.schema.dropTable('models');
  await knex.schema.dropTable('providers');
}
