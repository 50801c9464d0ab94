import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { PolicyPublishedInput, PolicyPublishedResult } from './messages';

/** Each call is one statement or one batch of sends; a killed worker's attempt is retried after a minute at most. */
const { queuePolicyEmails, sendPolicyEmails } = proxyActivities<Activities>({
  startToCloseTimeout: '5 minutes',
  heartbeatTimeout: '1 minute',
  retry: { initialInterval: '1 second', maximumInterval: '5 minutes', nonRetryableErrorTypes: ['PolicyPublishedInputError'] },
});

/**
 * `policy-published:{version}` (docs/customer-console.md#policy-changes): a
 * material privacy policy version was published. Pages through the account
 * owners by user id, queueing one email each (the outbox key
 * `policy:{version}:{userId}`, so a retried page or a second run queues
 * nothing twice), then sends what is queued. The history holds the version,
 * user ids used as cursors and counts, never an address.
 */
export async function policyPublished(input: PolicyPublishedInput): Promise<PolicyPublishedResult> {
  let after: string | null = null;
  let owners = 0;
  let queued = 0;
  do {
    const page: { owners: number; queued: number; next: string | null } = await queuePolicyEmails({ version: input.version, after });
    owners += page.owners;
    queued += page.queued;
    after = page.next;
  } while (after !== null);
  let sent = 0;
  for (;;) {
    const batch = await sendPolicyEmails({ version: input.version });
    sent += batch.sent;
    if (!batch.more) break;
  }
  return { owners, queued, sent };
}
