import type { Knex } from 'knex';

const TOKEN_COLUMNS = ['input_tokens', 'cache_read_tokens', 'cache_write_tokens', 'output_tokens', 'reasoning_tokens'];

/**
 * One record must not be able to stop metering (issue 17, item 5).
 *
 * - usage_events token counts become bigint: a provider reporting 3,000,000,000
 *   prompt tokens overflowed `integer`, failed its whole batch, and the batcher
 *   retried that batch forever. ALTER on the partitioned parent rewrites every
 *   day partition (an ACCESS EXCLUSIVE lock for as long as that takes; run it
 *   in a quiet hour on a large table). usage_hourly and provider_statements
 *   were bigint already; no view or function reads these columns.
 * - usage_clamped marks an event whose provider-reported count was beyond the
 *   documented maximum (MAX_TOKEN_COUNT in src/metering/record.ts) or negative
 *   and was clamped by the gateway: billing staff review those.
 * - metering_quarantine holds the journal records that PostgreSQL refused for a
 *   data reason (SQLSTATE class 22 or 23), set aside one by one so the rest of
 *   their batch goes in. Metadata only: the record as the journal held it,
 *   without its network facts (source IP, User-Agent) and user id, plus the
 *   error's SQLSTATE and a message without the refused values. Unique per
 *   journal record, so a segment processed twice sets a record aside once.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(
    `ALTER TABLE usage_events ${TOKEN_COLUMNS.map((c) => `ALTER COLUMN ${c} TYPE bigint`).join(', ')},
       ADD COLUMN usage_clamped boolean NOT NULL DEFAULT false`,
  );
  await knex.raw(`
    CREATE TABLE metering_quarantine (
      id               bigserial   PRIMARY KEY,
      request_id       text        NOT NULL,
      -- As the journal record had it: the refused field may be this one.
      occurred_at      text        NOT NULL,
      account_id       text        NULL,
      gateway_instance text        NULL,
      record           jsonb       NOT NULL,
      error_code       text        NOT NULL,
      error_message    text        NOT NULL,
      quarantined_at   timestamptz NOT NULL DEFAULT now(),
      resolved_at      timestamptz NULL,
      resolved_by      text        NULL,
      resolution       text        NULL,
      UNIQUE (request_id, occurred_at)
    )`);
  await knex.raw(`CREATE INDEX metering_quarantine_open ON metering_quarantine (quarantined_at) WHERE resolved_at IS NULL`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TABLE metering_quarantine');
  await knex.raw(`ALTER TABLE usage_events DROP COLUMN usage_clamped, ${TOKEN_COLUMNS.map((c) => `ALTER COLUMN ${c} TYPE integer`).join(', ')}`);
}
