import { allHandlersFinished, condition, continueAsNew, proxyLocalActivities, setHandler, sleep, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { Money, toAmountString } from '../src/shared/money.rules';
import {
  meteringStatusQuery,
  usageRecordedSignal,
  type AccountMeteringInput,
  type AccountMeteringState,
} from './messages';

/** A hard cap below Temporal's own limits, in case the SDK's suggestion comes late. */
export const DEFAULT_MAX_HISTORY_EVENTS = 5_000;

/**
 * Settlement as a local activity: it runs inside the workflow task on the worker
 * that holds the workflow, with no activity task through the server. A killed
 * worker's attempt is retried when the workflow task times out and runs again
 * elsewhere; the settlement is idempotent, so a re-run changes nothing.
 */
const { settleUsage } = proxyLocalActivities<Activities>({
  startToCloseTimeout: '2 minutes',
  localRetryThreshold: '10 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds' },
});

/**
 * Retired: settlement shards (settlementShard) settle every account now. The
 * account's metering entity (`metering:{accountId}`), formerly started by
 * signal-with-start from the gateway's metering batcher, settles its account's
 * unsettled usage once more at its next wake-up (a signal, or its sweep timer)
 * and completes; `mixroute settlement migrate` wakes the ones still running.
 * usage_events in PostgreSQL is the truth: signals are wake-ups, so a lost or
 * duplicated one changes nothing that is billed. `settleMinIntervalMs` is
 * accepted and no longer read: there is no second settlement to space out.
 */
export async function accountMetering(input: AccountMeteringInput): Promise<void> {
  const state: AccountMeteringState = {
    signals: 0,
    eventsSignalled: 0,
    costSignalled: '0',
    lastOccurredAt: null,
    eventsSettled: 0,
    costSettled: '0',
    settlements: 0,
    generation: 0,
    ...input.state,
  };
  const maxHistory = input.maxHistoryEvents ?? DEFAULT_MAX_HISTORY_EVENTS;
  const sweep = input.sweepMs ?? 60_000;
  let woken = input.state !== undefined; // a new generation settles what the last one was woken for

  setHandler(usageRecordedSignal, (s) => {
    state.signals += 1;
    state.eventsSignalled += s.events;
    state.costSignalled = toAmountString(new Money(state.costSignalled).plus(s.cost));
    if (!state.lastOccurredAt || s.lastOccurredAt > state.lastOccurredAt) state.lastOccurredAt = s.lastOccurredAt;
    woken = true;
  });
  setHandler(meteringStatusQuery, () => state);

  const historyIsLong = () => workflowInfo().continueAsNewSuggested || workflowInfo().historyLength >= maxHistory;
  let sweepDue = false;
  void (async () => {
    for (;;) {
      await sleep(sweep);
      sweepDue = true;
    }
  })();
  await condition(() => woken || sweepDue || historyIsLong());
  if (historyIsLong()) {
    await condition(allHandlersFinished);
    await continueAsNew<typeof accountMetering>({ ...input, state: { ...state, generation: state.generation + 1 } });
  }
  // Draining, a long history does not matter any more: the workflow ends after this.
  for (;;) {
    const r = await settleUsage({ accountId: input.accountId });
    if (r.events > 0) {
      state.settlements += 1;
      state.eventsSettled += r.events;
      state.costSettled = toAmountString(new Money(state.costSettled).plus(r.cost));
    }
    if (!r.more) break;
  }
  await condition(allHandlersFinished);
}
