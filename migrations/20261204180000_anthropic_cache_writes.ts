import type { Knex } from 'knex';

/**
 * Prompt-cache writes priced by their lifetime (issue 21). Anthropic bills a
 * five-minute cache write at 1.25x and a one-hour write at 2x the input
 * price; pricing both at the input price (as before) under-charges.
 *
 * - prices: cache_write_per_mtok (five-minute writes, and writes whose
 *   lifetime the provider did not report) and cache_write_1h_per_mtok. NULL
 *   means "the input price", which is what every existing version charged, so
 *   history is re-priced the same.
 * - usage_events, usage_hourly: cache_write_1h_tokens, the one-hour PART of
 *   cache_write_tokens (which keeps counting every write, so every existing sum
 *   of input tokens stays right). Five-minute writes are
 *   cache_write_tokens - cache_write_1h_tokens. bigint like the other token
 *   columns (see 20261204170500). ADD COLUMN with a constant default on the
 *   partitioned parent reaches every partition without rewriting them.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE prices ADD COLUMN cache_write_per_mtok numeric(24,12) NULL, ADD COLUMN cache_write_1h_per_mtok numeric(24,12) NULL`);
  await knex.raw(
    `ALTER TABLE prices ADD CONSTRAINT prices_cache_write_non_negative CHECK (coalesce(cache_write_per_mtok, 0) >= 0 AND coalesce(cache_write_1h_per_mtok, 0) >= 0)`,
  );
  await knex.raw(`ALTER TABLE usage_events ADD COLUMN cache_write_1h_tokens bigint NOT NULL DEFAULT 0`);
  await knex.raw(`ALTER TABLE usage_events ADD CONSTRAINT usage_events_cache_write_1h_non_negative CHECK (cache_write_1h_tokens >= 0)`);
  await knex.raw(`ALTER TABLE usage_hourly ADD COLUMN cache_write_1h_tokens bigint NOT NULL DEFAULT 0`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE usage_hourly DROP COLUMN cache_write_1h_tokens`);
  await knex.raw(`ALTER TABLE usage_events DROP COLUMN cache_write_1h_tokens`);
  await knex.raw(`ALTER TABLE prices DROP CONSTRAINT prices_cache_write_non_negative, DROP COLUMN cache_write_per_mtok, DROP COLUMN cache_write_1h_per_mtok`);
}
