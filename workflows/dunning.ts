import { ActivityFailure, condition, continueAsNew, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { stepDueAt, validateDunningSteps } from '../src/shared/dunning.rules';
import { dunningResumedSignal, dunningSettledSignal, dunningStatusQuery, type DunningInput, type DunningResult, type DunningState, type DunningStepOutcome } from './messages';

/** A step is one short transaction: a worker killed during one is retried after 30 s at most. */
const { runDunningStep, checkDunningSettled } = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '1 minute', nonRetryableErrorTypes: ['DunningInputError'] },
});

/** Asking the provider for payment is tried for a while (about 2 hours); dunning goes on without it. */
const { requestInvoicePayment } = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '5 seconds', maximumInterval: '10 minutes', maximumAttempts: 20 },
});

type Done = DunningResult['steps'][number];

/**
 * `dunning:{invoiceId}` (docs/collections.md, "Dunning"): asks the payment
 * provider for the invoice's payment, then runs each step of the schedule at
 * anchor + offset (workflow time, so a test runs a schedule in seconds).
 *
 * - A step is one activity (runDunningStep), one transaction: it sends once
 *   and records what it did; a step that already ran (a retry, a replayed or
 *   continued run) returns what it did and sends nothing.
 * - `paused` (staff paused the account's dunning): the same step runs again
 *   after dunningResumed, after a settled signal, or every pauseRecheckMs.
 * - `skipped_settled` (paid, credited, written off, void): the workflow ends,
 *   `settled`. The settled signal (sent by whatever changed the invoice) does
 *   not end it by itself: a partial payment signals too, so the workflow asks
 *   (checkDunningSettled) and ends only when nothing is left to collect;
 *   otherwise it keeps waiting for the step.
 * - After the last step: `completed`.
 */
export async function dunning(input: DunningInput): Promise<DunningResult> {
  const steps = validateDunningSteps(input.steps);
  const done: Done[] = [];
  let lookAgain = false;
  let resumed = false;
  let paused = false;
  let settled = false;
  let current = 0;

  setHandler(dunningSettledSignal, () => {
    lookAgain = true;
  });
  setHandler(dunningResumedSignal, () => {
    resumed = true;
  });
  setHandler(dunningStatusQuery, (): DunningState => {
    const next = steps[current];
    return { settled, paused, next: !settled && next ? { name: next.name, dueAtMs: stepDueAt(input.anchorMs, next) } : null, done: [...done] };
  });

  const end = (ended: DunningResult['ended']): DunningResult => {
    settled = ended === 'settled';
    current = steps.length;
    return { ended, steps: done };
  };

  /** After a settled signal: true when the invoice no longer needs collecting. */
  const confirmSettled = async () => {
    lookAgain = false;
    return (await checkDunningSettled({ invoiceId: input.invoiceId })).settled;
  };

  try {
    await requestInvoicePayment({ invoiceId: input.invoiceId });
  } catch (err) {
    // No payment request (the provider down for hours, or refusing): the reminders still go.
    if (!(err instanceof ActivityFailure)) throw err;
  }

  for (; current < steps.length; current++) {
    const step = steps[current]!;
    const dueAt = stepDueAt(input.anchorMs, step);
    for (let left = dueAt - Date.now(); left > 0; left = dueAt - Date.now()) {
      if ((await condition(() => lookAgain, left)) && (await confirmSettled())) return end('settled');
    }
    let outcome: DunningStepOutcome;
    for (;;) {
      outcome = (await runDunningStep({ invoiceId: input.invoiceId, step, anchorMs: input.anchorMs })).outcome;
      if (outcome !== 'paused') break;
      paused = true;
      resumed = false;
      lookAgain = false;
      // A resume, a settled signal (the step finds the invoice settled) or the recheck: the step runs again.
      await condition(() => resumed || lookAgain, input.pauseRecheckMs);
      paused = false;
      // A long pause: a fresh run; its steps that ran return what they did.
      if (workflowInfo().continueAsNewSuggested) await continueAsNew<typeof dunning>(input);
    }
    done.push({ name: step.name, outcome });
    if (outcome === 'skipped_settled') return end('settled');
  }
  return end('completed');
}
