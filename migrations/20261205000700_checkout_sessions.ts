import type { Knex } from 'knex';
import { checkIn } from './ddl';

/**
 * Hosted checkout (issue 26; docs/ledger.md#hosted-checkout): the payment
 * provider's Checkout Sessions we open for a top-up or for an invoice's
 * remaining amount. The row is written before the provider is asked (status
 * 'creating', no session id yet), so every session the provider has is known
 * here with the account and amount it was opened for; the payment webhook
 * checks a payment against it. 'failed': the provider made no session.
 * No card data and no secret of the provider is kept.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`CREATE TABLE checkout_sessions (
    id                  uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id          uuid        NOT NULL REFERENCES accounts(id),
    purpose             text        NOT NULL,
    -- No foreign key: invoices are deleted by retention expiry, and a checkout does not hold one back.
    invoice_id          uuid        NULL,
    provider            text        NOT NULL DEFAULT 'stripe',
    provider_session_id text        NULL UNIQUE CHECK (provider_session_id IS NULL OR length(provider_session_id) BETWEEN 1 AND 255),
    url                 text        NULL CHECK (url IS NULL OR length(url) <= 5000),
    payment_intent_id   text        NULL CHECK (payment_intent_id IS NULL OR length(payment_intent_id) BETWEEN 1 AND 255),
    status              text        NOT NULL DEFAULT 'creating',
    amount              numeric(24,12) NOT NULL CHECK (amount > 0),
    currency            text        NOT NULL CHECK (length(currency) = 3),
    created_by          text        NOT NULL CHECK (length(created_by) BETWEEN 1 AND 200),
    created_at          timestamptz NOT NULL DEFAULT now(),
    expires_at          timestamptz NULL,
    completed_at        timestamptz NULL,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CHECK ((purpose = 'invoice') = (invoice_id IS NOT NULL)),
    CHECK ((status IN ('creating', 'failed')) = (provider_session_id IS NULL))
  )`);
  await knex.raw(checkIn('checkout_sessions', 'purpose', ['topup', 'invoice']));
  await knex.raw(checkIn('checkout_sessions', 'provider', ['stripe']));
  await knex.raw(checkIn('checkout_sessions', 'status', ['creating', 'open', 'complete', 'expired', 'failed']));
  await knex.raw(`CREATE INDEX checkout_sessions_account ON checkout_sessions (account_id, created_at DESC)`);
  await knex.raw(`CREATE INDEX checkout_sessions_invoice ON checkout_sessions (invoice_id) WHERE invoice_id IS NOT NULL`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`DROP TABLE checkout_sessions`);
}
