import type { Knex } from 'knex';

/**
 * Ordered fallback routes per public model: when the primary provider fails
 * before anything reached the client, the gateway tries these in order. The
 * price stays the public model's.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('model_fallbacks', (t) => {
    t.uuid('model_id').notNullable().references('models.id');
    t.integer('position').notNullable();
    t.uuid('provider_id').notNullable().references('providers.id');
    t.text('upstream_model').notNullable();
    t.primary(['model_id', 'position']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('model_fallbacks');
}
