import type { DbOrTrx } from '../db/knex';

/**
 * Payment requests of postpaid invoices (table invoice_payment_requests,
 * migration 20261204230000_dunning): the payment provider's request (a Stripe
 * PaymentIntent) made for an invoice, one per invoice. No secret of the
 * request (its client_secret) is stored.
 */

export interface PaymentRequestRow {
  invoice_id: string;
  account_id: string;
  provider: string;
  provider_id: string;
  amount: string;
  currency: string;
  created_at: Date;
}

/** The invoice's payment request, if one was made. */
export async function findPaymentRequest(db: DbOrTrx, invoiceId: string): Promise<PaymentRequestRow | undefined> {
  return db('invoice_payment_requests').where({ invoice_id: invoiceId }).first();
}

/** Stores a request; one made at the same moment for the same invoice wins and this returns undefined. */
export async function insertPaymentRequest(db: DbOrTrx, row: Omit<PaymentRequestRow, 'created_at'>): Promise<PaymentRequestRow | undefined> {
  const [r] = await db('invoice_payment_requests').insert(row).onConflict('invoice_id').ignore().returning('*');
  return r;
}

/** What a payment request is made from: the invoice and the provider's customer of its account. */
export async function invoiceToRequest(
  db: DbOrTrx,
  invoiceId: string,
): Promise<{ id: string; kind: string; plan: string; status: string; currency: string; amount_due: string; number: string | null; account_id: string; stripe_customer_id: string | null } | undefined> {
  return db('invoices as i')
    .join('accounts as a', 'a.id', 'i.account_id')
    .where('i.id', invoiceId)
    .first('i.id', 'i.kind', 'i.plan', 'i.status', 'i.currency', 'i.amount_due', 'i.number', 'i.account_id', 'a.stripe_customer_id');
}
