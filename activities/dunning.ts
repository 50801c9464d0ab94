import { Context } from '@temporalio/activity';
import { failingPermanentlyOn, type FailureTypes } from './errors';
import { NotFoundError, ValidationError } from '../src/errors';
import { DunningScheduleError, type DunningStep } from '../src/shared/dunning.rules';
import { startDunning, type DunningService } from '../src/invoicing/dunning.service';
import type { Config } from '../src/config';
import type { DunningStepOutcome } from '../workflows/messages';

/** An invoice that does not exist, or a step the rules refuse: retrying cannot fix it. */
const DUNNING_INPUT_ERRORS: FailureTypes = [
  [NotFoundError, 'DunningInputError'],
  [ValidationError, 'DunningInputError'],
  [DunningScheduleError, 'DunningInputError'],
];

/** The dunning workflow's activities (workflows/dunning.ts); each step's work is one transaction in the service. */
export function dunningActivities({ dunning }: { dunning: DunningService }) {
  return {
    /** One step of the schedule, once (a retry returns what the first run did). */
    async runDunningStep(input: { invoiceId: string; step: DunningStep; anchorMs: number }): Promise<{ outcome: DunningStepOutcome }> {
      return failingPermanentlyOn(DUNNING_INPUT_ERRORS, () => dunning.runStep(input));
    },

    /** After a settled signal: does the invoice still need collecting? (A partial payment signals too.) */
    async checkDunningSettled(input: { invoiceId: string }): Promise<{ settled: boolean }> {
      const r = await failingPermanentlyOn(DUNNING_INPUT_ERRORS, () => dunning.invoiceSettled(input));
      return { settled: r.settled };
    },
  };
}

/**
 * Starts `dunning:{invoiceId}` for an invoice just finalized, from inside an
 * activity: with the worker's client, on the activity's task queue, with the
 * configured schedule. Nothing for an invoice that is not collected (prepaid,
 * nothing due). Idempotent by the workflow id.
 */
export function dunningStarter({ dunning, invoicing }: { dunning: DunningService; invoicing: Config['invoicing'] }) {
  return async (invoiceId: string): Promise<void> => {
    const s = await dunning.startInputFor(invoiceId);
    if (!s) return;
    const ctx = Context.current();
    await startDunning(ctx.client, ctx.info.taskQueue, { ...s, schedule: invoicing.dunningSchedule, pauseRecheckMs: invoicing.dunningPauseRecheckMs });
  };
}
