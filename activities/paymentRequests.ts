import { NotFoundError, ValidationError } from '../src/errors';
import { PaymentProviderRejectedError, type PaymentRequestOutcome, type PaymentRequests } from '../src/invoicing/paymentRequests.service';
import { failingPermanentlyOn, type FailureTypes } from './errors';

/** What asking the payment provider for an invoice's payment did. */
export interface PaymentRequestResult {
  status: PaymentRequestOutcome['status'];
  /** The provider's id of the request (a PaymentIntent id); null when none was made. */
  providerId: string | null;
}

/**
 * The provider refused the request (a bad key, a bad amount), or the invoice
 * does not exist: retrying cannot help. Anything else (the provider or the
 * database unreachable, a 5xx, 429) is retried by the activity's policy; the
 * idempotency key makes a retry return the same PaymentIntent.
 */
const PERMANENT: FailureTypes = [
  [PaymentProviderRejectedError, 'PaymentProviderRejected'],
  [NotFoundError, 'NotFound'],
  [ValidationError, 'ValidationError'],
];

/**
 * Payment requests of postpaid invoices (docs/collections.md, "Payment
 * requests"): the dunning workflow asks for one first.
 */
export function paymentRequestActivities({ paymentRequests }: { paymentRequests: Pick<PaymentRequests, 'request'> }) {
  return {
    async requestInvoicePayment(input: { invoiceId: string }): Promise<PaymentRequestResult> {
      return failingPermanentlyOn(PERMANENT, () => paymentRequests.request(input.invoiceId));
    },
  };
}
