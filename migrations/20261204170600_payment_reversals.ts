import type { Knex } from 'knex';

/**
 * Payments are tied to the payment provider's customer (issue 17, item 9).
 *
 * - accounts.stripe_customer_id: the Stripe customer that pays for the account.
 *   Set by the first credited payment that carries a customer (or by staff);
 *   UNIQUE, so one customer can never top up two accounts. A payment naming an
 *   account whose customer is another one is recorded with status
 *   'customer_mismatch' and not credited.
 * - payments.customer_id: the customer the provider reported for the payment,
 *   so staff can see whose money a refused or reversed payment was.
 *
 * Refunds and disputes need no table of their own: each is a ledger entry
 * under a UNIQUE idempotency key (applyPaymentReversal in src/ledger/ledger.service.ts).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE accounts ADD COLUMN stripe_customer_id text NULL`);
  await knex.raw(`ALTER TABLE accounts ADD CONSTRAINT accounts_stripe_customer_id_unique UNIQUE (stripe_customer_id)`);
  await knex.raw(`ALTER TABLE payments ADD COLUMN customer_id text NULL`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE payments DROP COLUMN customer_id`);
  await knex.raw(`ALTER TABLE accounts DROP COLUMN stripe_customer_id`);
}
