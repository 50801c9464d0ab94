import { allHandlersFinished, condition, continueAsNew, setHandler, workflowInfo } from '@temporalio/workflow';
import { Money, toAmountString } from '../src/billing/money';
import {
  meteringStatusQuery,
  usageRecordedSignal,
  type AccountMeteringInput,
  type AccountMeteringState,
} from './messages';

/** A hard cap below Temporal's own limits, in case the SDK's suggestion comes late. */
export const DEFAULT_MAX_HISTORY_EVENTS = 5_000;

/**
 * The account's metering entity (`metering:{accountId}`), started by
 * signal-with-start from the gateway's metering batcher. Signals are wake-ups
 * with a summary; usage_events in PostgreSQL stays the truth, so a duplicated
 * signal can inflate these counters but never what is billed. Settlement of
 * usage into the ledger runs from this loop (prepaid-credits issue).
 */
export async function accountMetering(input: AccountMeteringInput): Promise<void> {
  const state: AccountMeteringState = input.state ?? {
    signals: 0,
    eventsSignalled: 0,
    costSignalled: '0',
    lastOccurredAt: null,
    generation: 0,
  };
  const maxHistory = input.maxHistoryEvents ?? DEFAULT_MAX_HISTORY_EVENTS;
  let woken = false;

  setHandler(usageRecordedSignal, (s) => {
    state.signals += 1;
    state.eventsSignalled += s.events;
    state.costSignalled = toAmountString(new Money(state.costSignalled).plus(s.cost));
    if (!state.lastOccurredAt || s.lastOccurredAt > state.lastOccurredAt) state.lastOccurredAt = s.lastOccurredAt;
    woken = true;
  });
  setHandler(meteringStatusQuery, () => state);

  const historyIsLong = () => workflowInfo().continueAsNewSuggested || workflowInfo().historyLength >= maxHistory;
  for (;;) {
    await condition(() => woken || historyIsLong());
    woken = false;
    if (historyIsLong()) {
      await condition(allHandlersFinished);
      await continueAsNew<typeof accountMetering>({ ...input, state: { ...state, generation: state.generation + 1 } });
    }
  }
}
