import type { Knex } from 'knex';

/**
 * The gateway counts failed authentications and rate-limit refusals per kind,
 * reason, source address, key and time window, and writes one row per such
 * group with its count (src/gateway/securityEvents.ts), so a flood adds rows
 * per window, not per attempt. A row is named by the first request of its
 * group (the unique (request_id, kind) index), which keeps its upsert
 * idempotent. Rows written one event at a time (admin, console) keep count 1
 * and no window.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    ALTER TABLE security_events
      ADD COLUMN count integer NOT NULL DEFAULT 1 CONSTRAINT security_events_count_positive CHECK (count >= 1),
      ADD COLUMN window_start timestamptz NULL,
      ADD COLUMN last_occurred_at timestamptz NULL`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE security_events DROP COLUMN last_occurred_at, DROP COLUMN window_start, DROP COLUMN count`);
}
