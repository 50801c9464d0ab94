import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { TopUpInput, TopUpResult } from './messages';

const { recordTopUp } = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '1 minute', nonRetryableErrorTypes: ['InvalidAmount', 'UnknownAccount', 'CurrencyMismatch'] },
});

/**
 * `topup:{provider}:{paymentId}`: credits a verified payment (or a staff
 * top-up or grant) exactly once, however many times it is delivered. The
 * activity is idempotent on the payment and the ledger key; the workflow id
 * makes a second delivery find this run instead of starting another.
 */
export async function topUp(input: TopUpInput): Promise<TopUpResult> {
  return recordTopUp(input);
}
