import type { Knex } from 'knex';
import { checkIn } from './ddl';

/** The account events of issue 22 (src/notifications/events.rules.ts says when each fires). */
export const ACCOUNT_EVENT_TYPES = [
  'balance.low',
  'balance.depleted',
  'balance.recovered',
  'key.limit_threshold',
  'key.limit_reached',
  'topup.succeeded',
  'invoice.finalized',
  'credit_note.created',
] as const;

/**
 * Account events and the account's alert settings (issue 22).
 *
 * - account_events: one row per thing that happened to an account's money
 *   that the account is told about (by email here, by webhook in the webhooks
 *   migration, which reads this table). Written in the transaction that moved
 *   the money, keyed by dedupe_key (UNIQUE, inserted ON CONFLICT DO NOTHING),
 *   so a retried settlement or top-up fires once. `data` holds ids, amounts as
 *   decimal strings and links only: never a name, an address or a payload.
 * - account_alert_settings: the low-balance thresholds (at most five amounts
 *   in the account's currency) and whether alerts are emailed to the billing
 *   address. No row means no thresholds and email on. Key thresholds are
 *   api_keys.limit_alert_percents.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`CREATE TABLE account_events (
    id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id   uuid        NOT NULL REFERENCES accounts(id),
    type         text        NOT NULL,
    occurred_at  timestamptz NOT NULL DEFAULT now(),
    data         jsonb       NOT NULL,
    dedupe_key   text        NOT NULL UNIQUE
  )`);
  await knex.raw(checkIn('account_events', 'type', ACCOUNT_EVENT_TYPES));
  await knex.raw(`CREATE INDEX account_events_account_occurred ON account_events (account_id, occurred_at)`);

  await knex.raw(`CREATE TABLE account_alert_settings (
    account_id              uuid             PRIMARY KEY REFERENCES accounts(id),
    low_balance_thresholds  numeric(24,12)[] NOT NULL DEFAULT '{}',
    email_alerts            boolean          NOT NULL DEFAULT true,
    updated_at              timestamptz      NOT NULL DEFAULT now(),
    CONSTRAINT account_alert_settings_thresholds_bounded
      CHECK (cardinality(low_balance_thresholds) <= 5 AND 0 < ALL(low_balance_thresholds) AND 1e12 > ALL(low_balance_thresholds))
  )`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`DROP TABLE account_alert_settings`);
  await knex.raw(`DROP TABLE account_events`);
}
