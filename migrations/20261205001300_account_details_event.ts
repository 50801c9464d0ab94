import type { Knex } from 'knex';
import { checkIn } from './ddl';

/**
 * The account event account.details_changed (docs/customer-console.md#billing):
 * a change of the billing details (name, VAT id, billing email, country) is
 * recorded, with the fields changed and who changed them, and emailed to the
 * billing address and sent to subscribed webhooks like any account event.
 */
const BEFORE = [
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

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE account_events DROP CONSTRAINT account_events_type_check`);
  await knex.raw(checkIn('account_events', 'type', [...BEFORE, 'account.details_changed']));
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`DELETE FROM account_events WHERE type = 'account.details_changed'`);
  await knex.raw(`ALTER TABLE account_events DROP CONSTRAINT account_events_type_check`);
  await knex.raw(checkIn('account_events', 'type', BEFORE));
}
