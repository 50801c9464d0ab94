import type { Knex } from 'knex';
import { checkIn } from './ddl';

/**
 * Webhook endpoints and their deliveries (issue 22; docs/webhooks.md).
 *
 * - webhook_endpoints: where an account wants its events (account_events)
 *   POSTed, which event types, and the signing secret. The secret must be
 *   readable to sign, so it is stored sealed (AES-256-GCM under
 *   WEBHOOK_SECRET_KEY, the endpoint id as associated data), never in clear.
 *   consecutive_failures / failing_since count the failed attempts since the
 *   last success; past the configured bound the endpoint is disabled.
 * - webhook_deliveries: one row per (endpoint, event), UNIQUE, so creating it
 *   twice is a no-op. Status, attempts and the last response code only: no
 *   response bodies. `generation` counts manual redeliveries; `started_at` is
 *   NULL until the dispatcher started the current generation's workflow
 *   (`webhook-delivery:{id}:{generation}`), which is what it looks for.
 *
 * Deliveries are created by a trigger in the transaction that inserts the
 * event: an event cannot commit without its deliveries, and nothing scans
 * events after the fact. The trigger looks up the account's active endpoints
 * by account (bounded per account), never all endpoints.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`CREATE TABLE webhook_endpoints (
    id                    uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id            uuid        NOT NULL REFERENCES accounts(id),
    url                   text        NOT NULL CHECK (length(url) <= 2048),
    event_types           text[]      NOT NULL CHECK (cardinality(event_types) BETWEEN 1 AND 16),
    secret_ciphertext     bytea       NOT NULL,
    secret_iv             bytea       NOT NULL,
    secret_tag            bytea       NOT NULL,
    secret_prefix         text        NOT NULL,
    status                text        NOT NULL DEFAULT 'active',
    consecutive_failures  integer     NOT NULL DEFAULT 0 CHECK (consecutive_failures >= 0),
    failing_since         timestamptz NULL,
    disabled_reason       text        NULL,
    created_at            timestamptz NOT NULL DEFAULT now(),
    disabled_at           timestamptz NULL
  )`);
  await knex.raw(checkIn('webhook_endpoints', 'status', ['active', 'disabled']));
  await knex.raw(`ALTER TABLE webhook_endpoints ADD CONSTRAINT webhook_endpoints_disabled_reason_check
    CHECK (disabled_reason IS NULL OR disabled_reason IN ('failures', 'staff', 'account'))`);
  await knex.raw(`CREATE INDEX webhook_endpoints_account ON webhook_endpoints (account_id, created_at, id)`);

  await knex.raw(`CREATE TABLE webhook_deliveries (
    id                  uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    endpoint_id         uuid        NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
    event_id            uuid        NOT NULL REFERENCES account_events(id) ON DELETE CASCADE,
    account_id          uuid        NOT NULL,
    event_type          text        NOT NULL,
    status              text        NOT NULL DEFAULT 'pending',
    attempts            integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_response_code  integer     NULL,
    last_error          text        NULL,
    last_attempt_at     timestamptz NULL,
    next_attempt_at     timestamptz NULL,
    generation          integer     NOT NULL DEFAULT 0,
    started_at          timestamptz NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT webhook_deliveries_endpoint_event UNIQUE (endpoint_id, event_id)
  )`);
  await knex.raw(checkIn('webhook_deliveries', 'status', ['pending', 'succeeded', 'failed']));
  // The dispatcher's work list: only rows whose workflow has not been started.
  await knex.raw(`CREATE INDEX webhook_deliveries_unstarted ON webhook_deliveries (created_at, id) WHERE started_at IS NULL`);
  await knex.raw(`CREATE INDEX webhook_deliveries_account_log ON webhook_deliveries (account_id, created_at DESC, id DESC)`);
  await knex.raw(`CREATE INDEX webhook_deliveries_endpoint_log ON webhook_deliveries (endpoint_id, created_at DESC, id DESC)`);
  await knex.raw(`CREATE INDEX webhook_deliveries_event ON webhook_deliveries (event_id)`);

  await knex.raw(`CREATE FUNCTION webhook_deliveries_for_event() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO webhook_deliveries (endpoint_id, event_id, account_id, event_type)
      SELECT e.id, NEW.id, NEW.account_id, NEW.type
        FROM webhook_endpoints e
       WHERE e.account_id = NEW.account_id AND e.status = 'active' AND NEW.type = ANY (e.event_types)
      ON CONFLICT (endpoint_id, event_id) DO NOTHING;
      RETURN NULL;
    END $$`);
  await knex.raw(`CREATE TRIGGER account_events_webhook_deliveries AFTER INSERT ON account_events
    FOR EACH ROW EXECUTE FUNCTION webhook_deliveries_for_event()`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`DROP TRIGGER IF EXISTS account_events_webhook_deliveries ON account_events`);
  await knex.raw(`DROP FUNCTION IF EXISTS webhook_deliveries_for_event()`);
  await knex.raw(`DROP TABLE webhook_deliveries`);
  await knex.raw(`DROP TABLE webhook_endpoints`);
}
