import type { Knex } from 'knex';
import { checkIn } from './ddl';

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
  'subprocessor.announced',
];

/**
 * Sub-processor change notices (issue 25 part 6; docs/processing-register.md#sub-processor-changes).
 *
 * - account_processing_agreements: the account has a data-processing
 *   agreement with us (we are its processor for its API traffic); only such
 *   accounts are notified of, and held back from, a new sub-processor. Who
 *   recorded it, why and when are on the row.
 * - subprocessor_changes: a recipient was added, or an existing one gained
 *   countries. One per register change (UNIQUE register_change_id, so a
 *   retried announcement is the same change); its workflow is
 *   `subprocessor-change:{id}`. `effective_at` is announced_at + the notice
 *   period the change was announced with.
 * - subprocessor_notices: one per change and account that had an agreement
 *   when the change was announced. `pending` and `objected` keep the
 *   recipient out of the account's traffic (the gateway reads them with the
 *   key); `accepted` (early) and `effective` (the period ran) let it in.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`CREATE TABLE account_processing_agreements (
    account_id     uuid        PRIMARY KEY REFERENCES accounts(id),
    agreement_ref  text        NOT NULL CHECK (length(agreement_ref) BETWEEN 1 AND 200),
    signed_on      date        NOT NULL,
    set_by         text        NOT NULL,
    reason         text        NOT NULL CHECK (length(reason) BETWEEN 3 AND 500),
    set_at         timestamptz NOT NULL DEFAULT now()
  )`);

  await knex.raw(`CREATE TABLE subprocessor_changes (
    id                  uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    register_change_id  bigint      NOT NULL UNIQUE REFERENCES register_changes(id),
    recipient_id        uuid        NOT NULL REFERENCES recipients(id),
    kind                text        NOT NULL,
    countries           text[]      NOT NULL CHECK (cardinality(countries) <= 50),
    notice_period_ms    bigint      NOT NULL CHECK (notice_period_ms BETWEEN 0 AND 31536000000),
    announced_at        timestamptz NOT NULL,
    effective_at        timestamptz NOT NULL,
    ended_at            timestamptz NULL,
    CHECK (effective_at >= announced_at)
  )`);
  await knex.raw(checkIn('subprocessor_changes', 'kind', ['recipient_added', 'countries_added']));
  await knex.raw(`CREATE INDEX subprocessor_changes_open ON subprocessor_changes (announced_at) WHERE ended_at IS NULL`);

  await knex.raw(`CREATE TABLE subprocessor_notices (
    change_id    uuid        NOT NULL REFERENCES subprocessor_changes(id),
    account_id   uuid        NOT NULL REFERENCES accounts(id),
    status       text        NOT NULL DEFAULT 'pending',
    notified_at  timestamptz NULL,
    decided_by   text        NULL,
    decided_at   timestamptz NULL,
    PRIMARY KEY (change_id, account_id),
    CHECK ((decided_at IS NULL) = (decided_by IS NULL))
  )`);
  await knex.raw(checkIn('subprocessor_notices', 'status', ['pending', 'accepted', 'objected', 'effective']));
  // The gateway's key lookup asks for an account's holds: pending and objected notices only.
  await knex.raw(`CREATE INDEX subprocessor_notices_holding ON subprocessor_notices (account_id) WHERE status IN ('pending', 'objected')`);

  await knex.raw(`ALTER TABLE account_events DROP CONSTRAINT account_events_type_check`);
  await knex.raw(checkIn('account_events', 'type', EVENT_TYPES));
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE account_events DROP CONSTRAINT account_events_type_check`);
  await knex.raw(checkIn('account_events', 'type', EVENT_TYPES.slice(0, 13)));
  for (const t of ['subprocessor_notices', 'subprocessor_changes', 'account_processing_agreements']) await knex.raw(`DROP TABLE ${t}`);
}
