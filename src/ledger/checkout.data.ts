import type { DbOrTrx } from '../db/knex';

/**
 * Checkout sessions (table checkout_sessions, migration
 * 20261205000700_checkout_sessions): the provider's hosted checkout opened for
 * a top-up or an invoice, written before the provider is asked.
 */

export type CheckoutStatus = 'creating' | 'open' | 'complete' | 'expired' | 'failed';

export interface CheckoutSessionRow {
  id: string;
  account_id: string;
  purpose: 'topup' | 'invoice';
  invoice_id: string | null;
  provider: string;
  provider_session_id: string | null;
  url: string | null;
  payment_intent_id: string | null;
  status: CheckoutStatus;
  amount: string;
  currency: string;
  created_by: string;
  created_at: Date;
  expires_at: Date | null;
  completed_at: Date | null;
  updated_at: Date;
}

/** What a checkout is opened for: the account's currency and the provider's customer bound to it. */
export async function checkoutAccount(db: DbOrTrx, accountId: string): Promise<{ id: string; currency: string; stripe_customer_id: string | null; status: string } | undefined> {
  return db('accounts').where({ id: accountId }).first('id', 'currency', 'stripe_customer_id', 'status');
}

export async function insertCheckout(
  db: DbOrTrx,
  row: Pick<CheckoutSessionRow, 'id' | 'account_id' | 'purpose' | 'invoice_id' | 'amount' | 'currency' | 'created_by'>,
): Promise<CheckoutSessionRow> {
  const [r] = await db('checkout_sessions').insert({ ...row, provider: 'stripe', status: 'creating' }).returning('*');
  return r as CheckoutSessionRow;
}

/** The provider made the session: its id, address and expiry. */
export async function markOpened(db: DbOrTrx, id: string, s: { providerSessionId: string; url: string; paymentIntentId: string | null; expiresAt: Date | null }): Promise<CheckoutSessionRow> {
  const [r] = await db('checkout_sessions')
    .where({ id, status: 'creating' })
    .update({ provider_session_id: s.providerSessionId, url: s.url, payment_intent_id: s.paymentIntentId, expires_at: s.expiresAt, status: 'open', updated_at: db.fn.now() })
    .returning('*');
  return r as CheckoutSessionRow;
}

export async function markFailed(db: DbOrTrx, id: string): Promise<void> {
  await db('checkout_sessions').where({ id, status: 'creating' }).update({ status: 'failed', updated_at: db.fn.now() });
}

/** The PaymentIntent that paid the checkout, when it is not known yet. */
export async function recordPaymentIntent(db: DbOrTrx, id: string, paymentIntentId: string): Promise<void> {
  await db('checkout_sessions').where({ id }).whereNull('payment_intent_id').update({ payment_intent_id: paymentIntentId, updated_at: db.fn.now() });
}

export async function findCheckout(db: DbOrTrx, id: string): Promise<CheckoutSessionRow | undefined> {
  return db('checkout_sessions').where({ id }).first();
}

export async function findCheckoutBySession(db: DbOrTrx, providerSessionId: string): Promise<CheckoutSessionRow | undefined> {
  return db('checkout_sessions').where({ provider: 'stripe', provider_session_id: providerSessionId }).first();
}

/**
 * The provider says the session completed or expired. A completed session
 * stays completed (an expiry after it changes nothing); an expired one may
 * still complete (the provider's word is last for payments). Returns the
 * row when this delivery changed it, undefined when it already said so.
 */
export async function applySessionStatus(db: DbOrTrx, id: string, status: 'complete' | 'expired', paymentIntentId: string | null): Promise<CheckoutSessionRow | undefined> {
  const q = db('checkout_sessions').where({ id });
  if (status === 'complete') {
    q.whereNot({ status: 'complete' }).update({
      status,
      completed_at: db.fn.now(),
      payment_intent_id: db.raw('COALESCE(?, payment_intent_id)', [paymentIntentId]),
      updated_at: db.fn.now(),
    });
  } else {
    q.where({ status: 'open' }).update({ status, updated_at: db.fn.now() });
  }
  const [r] = await q.returning('*');
  return r as CheckoutSessionRow | undefined;
}

/** An account's checkouts, newest first, with whether the payment of each was recorded (a top-up's payment status, or 'applied' to its invoice). */
export async function checkoutsOf(db: DbOrTrx, accountId: string, limit: number): Promise<(CheckoutSessionRow & { payment_status: string | null })[]> {
  return db('checkout_sessions as c')
    .leftJoin('payments as p', function () {
      this.on('p.provider', '=', 'c.provider').andOn('p.provider_payment_id', '=', 'c.payment_intent_id');
    })
    .leftJoin('invoice_payment_applications as a', function () {
      this.on('a.source', '=', 'c.provider').andOn('a.reference', '=', 'c.payment_intent_id');
    })
    .where('c.account_id', accountId)
    .orderBy([{ column: 'c.created_at', order: 'desc' }, { column: 'c.id', order: 'desc' }])
    .limit(limit)
    .select('c.*', db.raw("COALESCE(p.status, CASE WHEN a.id IS NOT NULL THEN 'applied' END) as payment_status"));
}
