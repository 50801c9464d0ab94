import { proxyLocalActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { InvoiceAccountInput, InvoiceAccountResult } from './messages';

/**
 * The invoice as a local activity: it runs inside this workflow's task on the
 * worker, so an account costs one workflow task and no activity task through
 * the server. A killed worker's attempt is retried when the workflow task
 * times out; the invoice transaction is idempotent (an existing invoice is
 * returned).
 */
const { invoiceAccountActivity } = proxyLocalActivities<Activities>({
  startToCloseTimeout: '5 minutes',
  localRetryThreshold: '10 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '1 minute', maximumAttempts: 10, nonRetryableErrorTypes: ['InvoiceDataError', 'UnknownAccount'] },
});

/**
 * `invoice:{accountId}:{period}`: settles the account's remaining usage, then
 * builds and finalizes its invoice in one transaction (number allocated
 * there). Idempotent: an account that already has its invoice gets it back.
 * Invoice runs invoice in batches (invoiceRun) and start none of these.
 */
export async function invoiceAccount(input: InvoiceAccountInput): Promise<InvoiceAccountResult> {
  return invoiceAccountActivity(input);
}
