import { patched, proxyActivities, proxyLocalActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { InvoiceAccountInput, InvoiceAccountResult } from './messages';

const retry = { initialInterval: '1 second', maximumInterval: '1 minute', maximumAttempts: 10, nonRetryableErrorTypes: ['InvoiceDataError', 'UnknownAccount'] };

const { invoiceAccountActivity } = proxyActivities<Activities>({
  startToCloseTimeout: '5 minutes',
  heartbeatTimeout: '30 seconds',
  retry,
});

/**
 * The invoice as a local activity: it runs inside this workflow's task on the
 * worker, so an account costs one workflow task and no activity task through
 * the server. In a run of thousands of accounts the Temporal server was the
 * busiest process; this takes about half its work per account away. A killed
 * worker's attempt is retried when the workflow task times out; the invoice
 * transaction is idempotent (an existing invoice is returned).
 */
const { invoiceAccountActivity: invoiceAccountLocally } = proxyLocalActivities<Activities>({
  startToCloseTimeout: '5 minutes',
  localRetryThreshold: '10 seconds',
  retry,
});

/** Histories from before the local activity replay with the activity task. */
const LOCAL_INVOICE_PATCH = 'invoice-as-local-activity';

/**
 * `invoice:{accountId}:{period}`: settles the account's remaining usage, then
 * builds and finalizes its invoice in one transaction (number allocated
 * there). Idempotent: an account that already has its invoice gets it back.
 */
export async function invoiceAccount(input: InvoiceAccountInput): Promise<InvoiceAccountResult> {
  return patched(LOCAL_INVOICE_PATCH) ? invoiceAccountLocally(input) : invoiceAccountActivity(input);
}
