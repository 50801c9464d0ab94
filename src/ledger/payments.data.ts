import type { DbOrTrx, Trx } from '../db/knex';
import type { TopUpInput } from '../../workflows/messages';

/**
 * The payments table: one row per provider payment, credited (`succeeded`)
 * or refused (`customer_mismatch`), and the Stripe customer an account is
 * bound to (accounts.stripe_customer_id). The rules of who may credit whom
 * are in ledger.service.ts (recordTopUp).
 */

/** The payments row of a top-up, credited (`succeeded`) or refused (`customer_mismatch`). */
function paymentRow(input: TopUpInput, status: 'succeeded' | 'customer_mismatch') {
  return {
    provider: input.provider,
    provider_payment_id: input.paymentId,
    account_id: input.accountId,
    amount: input.amount,
    currency: input.currency.toUpperCase(),
    status,
    customer_id: input.customerId ?? null,
  };
}

/** Records the top-up's payment once per provider and payment id; a repeat changes nothing. */
export async function insertPayment(trx: DbOrTrx, input: TopUpInput, status: 'succeeded' | 'customer_mismatch'): Promise<void> {
  await trx('payments').insert(paymentRow(input, status)).onConflict(['provider', 'provider_payment_id']).ignore();
}

export async function paymentStatus(trx: DbOrTrx, provider: string, paymentId: string): Promise<{ status: string } | undefined> {
  return trx('payments').where({ provider, provider_payment_id: paymentId }).first<{ status: string } | undefined>('status');
}

/** The payment as a refund or dispute needs it. */
export async function paymentForReversal(trx: DbOrTrx, provider: string, paymentId: string) {
  return trx('payments')
    .where({ provider, provider_payment_id: paymentId })
    .first<{ account_id: string; amount: string; currency: string; status: string; customer_id: string | null } | undefined>('account_id', 'amount', 'currency', 'status', 'customer_id');
}

/** The account's bound customer, the account row locked (two first payments cannot both bind it). */
export async function lockAccountCustomer(trx: Trx, accountId: string): Promise<{ stripe_customer_id: string | null }> {
  return trx('accounts').where({ id: accountId }).forUpdate().first<{ stripe_customer_id: string | null }>('stripe_customer_id');
}

/** Whether another account is bound to this customer. */
export async function customerBoundElsewhere(trx: DbOrTrx, customerId: string, accountId: string): Promise<boolean> {
  return !!(await trx('accounts').where({ stripe_customer_id: customerId }).whereNot({ id: accountId }).first('id'));
}

export async function bindCustomer(trx: DbOrTrx, accountId: string, customerId: string): Promise<void> {
  await trx('accounts').where({ id: accountId }).update({ stripe_customer_id: customerId });
}

/** A payment webhook delivery refused (bad signature, unreadable body): a security event, as the gateway records its own. */
export async function insertWebhookRejection(
  db: DbOrTrx,
  row: { reason: string; request_id: string | undefined; source_ip: string | null; user_agent: string | null },
): Promise<void> {
  await db('security_events').insert({ kind: 'webhook_rejected', ...row, source: 'admin' });
}
