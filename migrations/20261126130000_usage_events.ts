import type { Knex } from 'knex';

/**
 * One row per forwarded request: metadata only, never content. Partitioned by
 * UTC day on occurred_at so metadata expiry can drop whole partitions.
 *
 * A partitioned table's unique keys must include the partition key, so the
 * idempotency key is (request_id, occurred_at). Both come from the one journal
 * record the gateway wrote when the request finished, so a replayed record
 * always carries the same pair and ON CONFLICT DO NOTHING makes it a no-op.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE usage_events (
      request_id          text        NOT NULL,
      occurred_at         timestamptz NOT NULL,
      finished_at         timestamptz NOT NULL,
      account_id          uuid        NOT NULL,
      api_key_id          uuid        NOT NULL,
      user_id             uuid        NULL,
      endpoint            text        NOT NULL,
      model               text        NULL,
      provider            text        NULL,
      upstream_model      text        NULL,
      price_id            uuid        NULL,
      status_code         integer     NOT NULL,
      error_type          text        NULL,
      stream              boolean     NOT NULL,
      input_tokens        integer     NOT NULL DEFAULT 0,
      cache_read_tokens   integer     NOT NULL DEFAULT 0,
      cache_write_tokens  integer     NOT NULL DEFAULT 0,
      output_tokens       integer     NOT NULL DEFAULT 0,
      reasoning_tokens    integer     NOT NULL DEFAULT 0,
      usage_estimated     boolean     NOT NULL DEFAULT false,
      cost                numeric(24,12) NOT NULL DEFAULT 0,
      currency            char(3)     NOT NULL DEFAULT 'USD',
      latency_ms          integer     NOT NULL,
      upstream_latency_ms integer     NULL,
      source_ip           inet        NULL,
      user_agent          text        NULL,
      gateway_instance    text        NOT NULL,
      recorded_at         timestamptz NOT NULL DEFAULT now(),
      settled_at          timestamptz NULL,
      PRIMARY KEY (request_id, occurred_at),
      CHECK (cost >= 0),
      CHECK (input_tokens >= 0 AND cache_read_tokens >= 0 AND cache_write_tokens >= 0 AND output_tokens >= 0 AND reasoning_tokens >= 0)
    ) PARTITION BY RANGE (occurred_at)`);
  await knex.raw(`CREATE INDEX usage_events_account_time ON usage_events (account_id, occurred_at)`);
  await knex.raw(`CREATE INDEX usage_events_unsettled ON usage_events (account_id, occurred_at) WHERE settled_at IS NULL`);

  // Creates the UTC-day partition holding `day` if it is missing. Bounds are
  // written with an explicit +00 so the session time zone cannot shift them.
  // Concurrent creators race harmlessly: the loser's error is swallowed.
  await knex.raw(`
    CREATE FUNCTION ensure_usage_events_partition(day date) RETURNS text
    LANGUAGE plpgsql AS $$
    DECLARE
      part text := 'usage_events_' || to_char(day, 'YYYYMMDD');
    BEGIN
      IF to_regclass(part) IS NULL THEN
        BEGIN
          EXECUTE format(
            'CREATE TABLE %I PARTITION OF usage_events FOR VALUES FROM (%L) TO (%L)',
            part, day::text || ' 00:00:00+00', (day + 1)::text || ' 00:00:00+00');
        EXCEPTION WHEN duplicate_table OR unique_violation THEN
          NULL;
        END;
      END IF;
      RETURN part;
    END $$`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TABLE usage_events');
  await knex.raw('DROP FUNCTION ensure_usage_events_partition(date)');
}
