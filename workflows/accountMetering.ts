import { allHandlersFinished, condition, continueAsNew, patched, proxyActivities, proxyLocalActivities, setHandler, sleep, workflowInfo } from '@temporalio/workflow';
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

/** One settlement transaction; heartbeats so a killed worker's attempt is retried within seconds. */
const settlement = {
  startToCloseTimeout: '2 minutes',
  heartbeatTimeout: '5 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds' },
} as const;
const { settleUsage } = proxyActivities<Activities>(settlement);

/**
 * Settlement as a local activity: it runs inside the workflow task on the worker
 * that holds the workflow, with no activity task through the server. Per
 * settlement that is one workflow task instead of two, and no wait for an
 * activity slot; under load those waits were most of the deduction lag (see the
 * deduction benchmark's stage breakdown). A killed worker's attempt is retried
 * when the workflow task times out and runs again elsewhere; the settlement is
 * idempotent, so a re-run changes nothing.
 */
const { settleUsage: settleUsageLocally } = proxyLocalActivities<Activities>({
  startToCloseTimeout: '2 minutes',
  localRetryThreshold: '10 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds' },
});
/** Histories written before settlement became a local activity replay with the activity task. */
const LOCAL_SETTLEMENT_PATCH = 'settle-as-local-activity';
/**
 * One sweep timer per sweep period, instead of a timer started with every wait
 * and cancelled by the next signal: two commands and two history events fewer
 * per settlement, on the worker's busiest path (the deduction benchmark's
 * workflow thread is saturated). Histories from before replay the old waits.
 */
const ONE_SWEEP_TIMER_PATCH = 'metering-one-sweep-timer';
/**
 * Retired: settlement shards (settlementShard) settle every account now. A
 * per-account workflow still running, or started by a gateway of the old
 * version during a rollout, settles its account once more at its next
 * wake-up (a signal, or its sweep timer) and completes. Histories from before
 * replay the old loop.
 */
const RETIRED_PATCH = 'metering-retired';

/**
 * Retired (see RETIRED_PATCH): the account's metering entity
 * (`metering:{accountId}`), formerly started by signal-with-start from the
 * gateway's metering batcher. A signal wakes it;
 * it settles the account's unsettled usage (usage_hourly, one ledger entry,
 * holds released, events marked) through one activity, then waits at least
 * `settleMinIntervalMs` so frequent signals share a settlement. Without
 * signals it still settles every `sweepMs`. usage_events in PostgreSQL is the
 * truth: signals are wake-ups, so a lost or duplicated one changes nothing
 * that is billed.
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
  const minInterval = input.settleMinIntervalMs ?? 500;
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
  const oneSweepTimer = patched(ONE_SWEEP_TIMER_PATCH);
  let sweepDue = false;
  if (oneSweepTimer) {
    void (async () => {
      for (;;) {
        await sleep(sweep);
        sweepDue = true;
      }
    })();
  }
  for (;;) {
    if (oneSweepTimer) {
      await condition(() => woken || sweepDue || historyIsLong());
      sweepDue = false;
    } else {
      await condition(() => woken || historyIsLong(), sweep);
    }
    if (historyIsLong()) {
      await condition(allHandlersFinished);
      await continueAsNew<typeof accountMetering>({ ...input, state: { ...state, generation: state.generation + 1 } });
    }
    woken = false;
    const retired = patched(RETIRED_PATCH);
    for (;;) {
      const settle = patched(LOCAL_SETTLEMENT_PATCH) ? settleUsageLocally : settleUsage;
      const r = await settle({ accountId: input.accountId });
      if (r.events > 0) {
        state.settlements += 1;
        state.eventsSettled += r.events;
        state.costSettled = toAmountString(new Money(state.costSettled).plus(r.cost));
      }
      // Draining, a long history does not matter any more: the workflow ends after this.
      if (!r.more || (!retired && historyIsLong())) break;
    }
    if (retired) {
      await condition(allHandlersFinished);
      return;
    }
    if (minInterval > 0) await sleep(minInterval);
  }
}
