import { NotFoundError, ValidationError } from '../src/errors';
import type { PolicyVersionsService } from '../src/policyVersions/policyVersions.service';
import { failingPermanentlyOn, type FailureTypes } from './errors';
import { withHeartbeat } from './heartbeat';

/** A version that does not exist or is not material: retrying cannot fix it. */
const INPUT_ERRORS: FailureTypes = [
  [NotFoundError, 'PolicyPublishedInputError'],
  [ValidationError, 'PolicyPublishedInputError'],
];

/** The policyPublished workflow's activities (workflows/policyPublished.ts): a version and a user id in, counts out. */
export function policyVersionActivities({ policyVersions }: { policyVersions: PolicyVersionsService }) {
  return {
    /** Queues the emails of one page of account owners after `after`; a retried page queues nothing twice (outbox key). */
    async queuePolicyEmails(input: { version: string; after: string | null }): Promise<{ owners: number; queued: number; next: string | null }> {
      return failingPermanentlyOn(INPUT_ERRORS, () => policyVersions.queueOwnerEmails(input.version, input.after));
    },

    /** Sends a batch of the version's queued emails, each marked sent right after it went. */
    async sendPolicyEmails(input: { version: string }): Promise<{ sent: number; more: boolean }> {
      return failingPermanentlyOn(INPUT_ERRORS, () => withHeartbeat({ everyMs: 10_000 }, (beat) => policyVersions.sendOwnerEmails(input.version, beat)));
    },
  };
}
