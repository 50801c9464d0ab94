import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { InvoiceAccountInput, InvoiceAccountResult } from './messages';

const { invoiceAccountActivity } = proxyActivities<Activities>({
  startToCloseTimeout: '5 minutes',
  heartbeatTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '1 minute', maximumAttempts: 10, nonRetryableErrorTypes: ['InvoiceDataError', 'UnknownAccount'] },
});

/**
 * `invoice:{accountId}:{period}`: settles the account's remaining usage, then
 * builds and finalizes its invoice in one transaction (number allocated
 * there). Idempotent: an account that already has its invoice gets it back.
 */
export async function invoiceAccount(input: InvoiceAccountInput): Promise<InvoiceAccountResult> {
  return invoiceAccountActivity(input);
}
