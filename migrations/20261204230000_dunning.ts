import type { Knex } from 'knex';
import { checkIn } from './ddl';

/** Account event types after this migration (src/notifications/events.rules.ts holds the same list). */
const EVENT_TYPES = [
  'balance.low',
  'balance.depleted',
  'balance.recovered',
  'key.limit_threshold',
  'key.limit_reached',
  'topup.succeeded',
  'invoice.finalized',
  'credit_note.created',
  'invoice.payment_due',
  'invoice.overdue',
  'invoice.paid',
  'account.suspended',
  'account.reinstated',
] as const;

/**
 * Collections, second part (issue 23; docs/collections.md): payment requests,
 * dunning, suspension.
 *
 * - invoice_payment_requests: the payment provider's request for an invoice
 *   (a Stripe PaymentIntent whose metadata names the invoice), one per
 *   invoice. No secret of the intent (client_secret) is kept.
 * - dunning_steps: what the dunning workflow of an invoice did at each step
 *   of its schedule, one row per (invoice, step): the row is written in the
 *   transaction that queues the step's email and webhook event, so a retried
 *   step finds it and sends nothing twice.
 * - dunning_pauses: billing staff paused dunning for an account (who, why,
 *   when; and who resumed it). At most one open pause per account.
 * - account_suspensions: an account suspended for an unpaid invoice (or by
 *   staff) and its reinstatement, with who and why. At most one open
 *   suspension per account; accounts.status says 'suspended' while it is open,
 *   which is what the gateway reads.
 * - invoice_payment_applications gains the source 'stripe' (reference: the
 *   PaymentIntent id), so a webhook's payment is applied once.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`CREATE TABLE invoice_payment_requests (
    invoice_id     uuid        PRIMARY KEY REFERENCES invoices(id),
    account_id     uuid        NOT NULL REFERENCES accounts(id),
    provider       text        NOT NULL,
    provider_id    text        NOT NULL,
    amount         numeric(24,12) NOT NULL CHECK (amount > 0),
    currency       text        NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (provider, provider_id)
  )`);
  await knex.raw(checkIn('invoice_payment_requests', 'provider', ['stripe']));

  await knex.raw(`CREATE TABLE dunning_steps (
    invoice_id     uuid        NOT NULL REFERENCES invoices(id),
    step           text        NOT NULL CHECK (length(step) BETWEEN 1 AND 40),
    account_id     uuid        NOT NULL REFERENCES accounts(id),
    kind           text        NOT NULL,
    due_at         timestamptz NOT NULL,
    done_at        timestamptz NOT NULL DEFAULT now(),
    outcome        text        NOT NULL,
    event_id       uuid        NULL,
    PRIMARY KEY (invoice_id, step)
  )`);
  await knex.raw(checkIn('dunning_steps', 'kind', ['notice', 'reminder', 'suspension']));
  await knex.raw(checkIn('dunning_steps', 'outcome', ['sent', 'suspended', 'skipped_settled', 'skipped_already_suspended']));
  await knex.raw(`CREATE INDEX dunning_steps_account ON dunning_steps (account_id)`);

  await knex.raw(`CREATE TABLE dunning_pauses (
    id             uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id     uuid        NOT NULL REFERENCES accounts(id),
    reason         text        NOT NULL CHECK (length(reason) BETWEEN 3 AND 500),
    paused_by      text        NOT NULL,
    paused_at      timestamptz NOT NULL DEFAULT now(),
    resumed_by     text        NULL,
    resumed_at     timestamptz NULL,
    CHECK ((resumed_at IS NULL) = (resumed_by IS NULL))
  )`);
  await knex.raw(`CREATE UNIQUE INDEX dunning_pauses_one_open ON dunning_pauses (account_id) WHERE resumed_at IS NULL`);

  await knex.raw(`CREATE TABLE account_suspensions (
    id               uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id       uuid        NOT NULL REFERENCES accounts(id),
    invoice_id       uuid        NULL REFERENCES invoices(id),
    reason           text        NOT NULL CHECK (length(reason) BETWEEN 3 AND 500),
    suspended_by     text        NOT NULL,
    suspended_at     timestamptz NOT NULL DEFAULT now(),
    reinstated_by    text        NULL,
    reinstated_at    timestamptz NULL,
    reinstate_reason text        NULL CHECK (reinstate_reason IS NULL OR length(reinstate_reason) BETWEEN 3 AND 500),
    CHECK ((reinstated_at IS NULL) = (reinstated_by IS NULL))
  )`);
  await knex.raw(`CREATE UNIQUE INDEX account_suspensions_one_open ON account_suspensions (account_id) WHERE reinstated_at IS NULL`);
  // The dunning workflow suspends once per invoice: a retried suspension step finds its row.
  await knex.raw(`CREATE UNIQUE INDEX account_suspensions_per_invoice ON account_suspensions (invoice_id) WHERE invoice_id IS NOT NULL`);

  await knex.raw(`ALTER TABLE invoice_payment_applications DROP CONSTRAINT invoice_payment_applications_source_check`);
  await knex.raw(checkIn('invoice_payment_applications', 'source', ['bank_transfer', 'stripe']));
  await knex.raw(`ALTER TABLE account_events DROP CONSTRAINT account_events_type_check`);
  await knex.raw(checkIn('account_events', 'type', EVENT_TYPES));
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE account_events DROP CONSTRAINT account_events_type_check`);
  await knex.raw(checkIn('account_events', 'type', EVENT_TYPES.slice(0, 8)));
  await knex.raw(`ALTER TABLE invoice_payment_applications DROP CONSTRAINT invoice_payment_applications_source_check`);
  await knex.raw(checkIn('invoice_payment_applications', 'source', ['bank_transfer']));
  await knex.raw(`DROP TABLE account_suspensions`);
  await knex.raw(`DROP TABLE dunning_pauses`);
  await knex.raw(`DROP TABLE dunning_steps`);
  await knex.raw(`DROP TABLE invoice_payment_requests`);
}
