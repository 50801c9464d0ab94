import type { Knex } from 'knex';
import { checkIn } from './ddl';

/**
 * What API clients see and control of their own spend (issue 22).
 *
 * - api_keys.kind: `inference` keys make model calls and see only themselves;
 *   `management` keys manage the account's keys and read its spend but make no
 *   model calls.
 * - api_keys.expires_at: a key stops authenticating at this instant.
 * - api_keys.spend_limit / limit_window: the most the key may spend in a UTC
 *   calendar window (`daily`, `weekly` from Monday, `monthly`), or in its whole
 *   life when the window is NULL. The window is computed from the clock, never
 *   reset by a job, so a missed schedule cannot leave a key blocked.
 * - api_keys.limit_alert_percents: the shares of the limit at which the account
 *   is told (once per crossing per window).
 * - usage_daily_keys: settled usage per account, UTC day, key and model. Written
 *   by settlement in the same transaction as usage_hourly; a key's spend in a
 *   window and the account's activity by key are sums over at most 366 days of
 *   it, never a scan of usage_events.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE api_keys
    ADD COLUMN kind text NOT NULL DEFAULT 'inference',
    ADD COLUMN expires_at timestamptz NULL,
    ADD COLUMN spend_limit numeric(24,12) NULL,
    ADD COLUMN limit_window text NULL,
    ADD COLUMN limit_alert_percents integer[] NOT NULL DEFAULT '{80,100}'`);
  await knex.raw(checkIn('api_keys', 'kind', ['inference', 'management']));
  await knex.raw(`ALTER TABLE api_keys ADD CONSTRAINT api_keys_limit_window_check CHECK (limit_window IS NULL OR limit_window IN ('daily', 'weekly', 'monthly'))`);
  await knex.raw(`ALTER TABLE api_keys ADD CONSTRAINT api_keys_spend_limit_positive CHECK (spend_limit IS NULL OR spend_limit > 0)`);
  await knex.raw(`ALTER TABLE api_keys ADD CONSTRAINT api_keys_window_needs_limit CHECK (limit_window IS NULL OR spend_limit IS NOT NULL)`);
  await knex.raw(
    `ALTER TABLE api_keys ADD CONSTRAINT api_keys_alert_percents_bounded CHECK (cardinality(limit_alert_percents) <= 5 AND 1 <= ALL(limit_alert_percents) AND 100 >= ALL(limit_alert_percents))`,
  );

  await knex.raw(`CREATE TABLE usage_daily_keys (
    account_id          uuid           NOT NULL REFERENCES accounts(id),
    day                 date           NOT NULL,
    api_key_id          uuid           NOT NULL REFERENCES api_keys(id),
    model               text           NOT NULL,
    requests            integer        NOT NULL,
    input_tokens        bigint         NOT NULL,
    cache_read_tokens   bigint         NOT NULL,
    cache_write_tokens  bigint         NOT NULL,
    output_tokens       bigint         NOT NULL,
    reasoning_tokens    bigint         NOT NULL,
    cost                numeric(24,12) NOT NULL,
    PRIMARY KEY (api_key_id, day, model)
  )`);
  await knex.raw(`CREATE INDEX usage_daily_keys_account_day ON usage_daily_keys (account_id, day)`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`DROP TABLE usage_daily_keys`);
  await knex.raw(`ALTER TABLE api_keys
    DROP COLUMN kind, DROP COLUMN expires_at, DROP COLUMN spend_limit, DROP COLUMN limit_window, DROP COLUMN limit_alert_percents`);
}
