import { z } from 'zod';
import { ConflictError, NotFoundError } from '../errors';
import { toMinor } from '../ledger/checkout.rules';
import { actorInput, ruleError, topUpCheckoutService, type CheckoutDeps, type CheckoutResult } from '../ledger/checkout.service';
import { validate } from '../shared/validate';
import { invoiceToRequest } from './paymentRequests.data';
import { paymentFacts } from './payments.data';
import { amountOutstanding } from './paymentStatus.rules';

/**
 * Hosted checkout for customers (docs/ledger.md#hosted-checkout): top-ups
 * (src/ledger/checkout.service.ts) and paying what is left of an open
 * postpaid invoice. The invoice's session carries `invoice_id` in its
 * PaymentIntent's metadata, so the payment webhook applies the payment to
 * the invoice once (invoicePayments.applyProviderPayment), as for a payment
 * request. The entry point of the customer console.
 */

const urlInput = z.string().max(2_000).optional();
const invoiceCheckoutInput = z.strictObject({
  accountId: z.uuid({ error: 'accountId must be an account id (UUID)' }),
  invoiceId: z.uuid({ error: 'invoiceId must be an invoice id (UUID)' }),
  successUrl: urlInput,
  cancelUrl: urlInput,
  actor: actorInput,
});

export function checkoutService(deps: CheckoutDeps) {
  const { db } = deps;
  const topUps = topUpCheckoutService(deps);
  return {
    ...topUps,

    /**
     * Pays the invoice's remaining amount by card. 404 for an invoice that
     * does not exist or is another account's (the same answer); 409 for one
     * that is not collectable by card (a draft, prepaid, void, paid or
     * written off).
     */
    async createInvoiceCheckout(raw: unknown): Promise<CheckoutResult> {
      const input = validate(invoiceCheckoutInput, raw);
      const account = await topUps.accountFor(input.accountId);
      const inv = await invoiceToRequest(db, input.invoiceId);
      if (!inv || inv.account_id !== account.id) throw new NotFoundError(`invoice ${input.invoiceId} not found`);
      const name = inv.number ?? input.invoiceId;
      if (inv.kind !== 'invoice' || inv.plan !== 'postpaid') throw new ConflictError(`invoice ${name} is not paid by card: only postpaid invoices are`);
      if (inv.status === 'void') throw new ConflictError(`invoice ${name} is void: nothing to pay`);
      if (inv.status !== 'finalized') throw new ConflictError(`invoice ${name} is not finalized yet`);
      const facts = (await paymentFacts(db, [inv.id])).get(inv.id)!;
      if (facts.writtenOff) throw new ConflictError(`invoice ${name} was written off: contact billing`);
      const outstanding = amountOutstanding(inv.amount_due, facts.credited, facts.paid, inv.currency);
      if (outstanding.lte(0)) throw new ConflictError(`invoice ${name} is paid: nothing to pay`);
      let minor: number;
      try {
        minor = toMinor(outstanding, inv.currency);
      } catch (err) {
        throw ruleError(err);
      }
      return topUps.open({
        accountId: account.id,
        purpose: 'invoice',
        invoiceId: inv.id,
        amount: outstanding,
        minor,
        currency: inv.currency,
        // The invoice's account's customer: the webhook refuses another's payment for it.
        customerId: inv.stripe_customer_id,
        label: `Invoice ${name}`,
        metadata: { invoice_number: inv.number ?? '' },
        successUrl: input.successUrl,
        cancelUrl: input.cancelUrl,
        actor: input.actor,
      });
    },
  };
}

export type CheckoutService = ReturnType<typeof checkoutService>;
