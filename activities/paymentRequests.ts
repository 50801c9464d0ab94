import type { Config } from '../src/config';
import type { Db } from '../src/db/knex';

/** What asking the payment provider for an invoice's payment did. */
export interface PaymentRequestResult {
  status: 'created' | 'existing' | 'not_configured' | 'nothing_due';
  /** The provider's id of the request (a PaymentIntent id); null when none was made. */
  providerId: string | null;
}

/**
 * Payment requests of postpaid invoices (docs/collections.md). The dunning
 * workflow asks for one first. Placeholder until the payment-request service lands.
 */
export function paymentRequestActivities(_deps: { db: Db; invoicing: Config['invoicing'] }) {
  return {
    async requestInvoicePayment(_input: { invoiceId: string }): Promise<PaymentRequestResult> {
      return { status: 'not_configured', providerId: null };
    },
  };
}
