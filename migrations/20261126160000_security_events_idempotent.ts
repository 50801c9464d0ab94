import type { Knex } from 'knex';

/**
 * The gateway writes security events in batches and puts a failed batch back
 * to retry it; an insert that succeeded but whose answer was lost would then
 * be written twice. One event per request and kind makes the retry a no-op.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`CREATE UNIQUE INDEX security_events_request_kind ON security_events (request_id, kind) WHERE request_id IS NOT NULL`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`DROP INDEX security_events_request_kind`);
}
