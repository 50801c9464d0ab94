import { proxyActivities, sleep } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { SubprocessorChangeInput, SubprocessorChangeResult } from './messages';

/** Each call is one page or one short transaction; a killed worker's attempt is retried after a minute at most. */
const { announceSubprocessorChange, endSubprocessorNotice } = proxyActivities<Activities>({
  startToCloseTimeout: '5 minutes',
  heartbeatTimeout: '1 minute',
  retry: { initialInterval: '1 second', maximumInterval: '5 minutes', nonRetryableErrorTypes: ['SubprocessorChangeInputError'] },
});

/**
 * `subprocessor-change:{changeId}` (docs/processing-register.md#sub-processor-changes):
 * a recipient was added to the register, or gained countries, and every
 * account with a data-processing agreement holds it back from its traffic
 * from the moment the change committed (its notice rows, written in the
 * register's own transaction). The workflow tells each of those accounts
 * (email and webhook, once each), waits out the notice period on workflow
 * time (so a test runs it in seconds), then lets the recipient in for every
 * account whose notice is still pending. Accepting early or objecting is a
 * change of the account's notice row, not of this workflow.
 */
export async function subprocessorChange(input: SubprocessorChangeInput): Promise<SubprocessorChangeResult> {
  const { notified } = await announceSubprocessorChange({ changeId: input.changeId });
  const wait = input.announcedAtMs + input.noticePeriodMs - Date.now();
  if (wait > 0) await sleep(wait);
  const { effective } = await endSubprocessorNotice({ changeId: input.changeId });
  return { notified, effective };
}
