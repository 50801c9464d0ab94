import { NotFoundError } from '../src/errors';
import type { SubprocessorService } from '../src/register/subprocessor.service';
import { failingPermanentlyOn, type FailureTypes } from './errors';
import { withHeartbeat } from './heartbeat';

/** A change that does not exist: retrying cannot fix it. */
const INPUT_ERRORS: FailureTypes = [[NotFoundError, 'SubprocessorChangeInputError']];

/** The subprocessorChange workflow's activities (workflows/subprocessorChange.ts). */
export function subprocessorActivities({ subprocessors }: { subprocessors: SubprocessorService }) {
  return {
    /** Tells every agreement account not told yet, a page per transaction; a retry tells only the rest. */
    async announceSubprocessorChange(input: { changeId: string }): Promise<{ notified: number }> {
      return failingPermanentlyOn(INPUT_ERRORS, () => withHeartbeat({ everyMs: 10_000 }, (beat) => subprocessors.announce(input.changeId, beat)));
    },

    /** The period ran: pending notices take effect. */
    async endSubprocessorNotice(input: { changeId: string }): Promise<{ effective: number }> {
      return failingPermanentlyOn(INPUT_ERRORS, () => subprocessors.end(input.changeId));
    },
  };
}
