import { allHandlersFinished, condition, continueAsNew, proxyLocalActivities, setHandler, sleep, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { Money, toAmountString } from '../src/shared/money.rules';
import { settlementShardStatusQuery, settlementWakeSignal, type SettlementShardInput, type SettlementShardState } from './messages';

/** A hard cap below Temporal's own limits, in case the SDK's suggestion comes late. */
export const DEFAULT_MAX_HISTORY_EVENTS = 5_000;
/** Accounts settled together in one pass; the rest of the hint waits for the next pass. */
export const ACCOUNTS_PER_PASS = 2_000;
/** More named accounts than this waiting: forget the names and sweep the shard instead (bounded state). */
export const MAX_PENDING_ACCOUNTS = 10_000;

/**
 * Settlement as a local activity: it runs inside the workflow task on the
 * worker that holds the shard, with no activity task through the server. A
 * killed worker's pass is retried when the workflow task times out, on
 * another worker; a pass is one transaction, so a re-run changes nothing that
 * committed and redoes whatever did not.
 */
const { settleShard } = proxyLocalActivities<Activities>({
  startToCloseTimeout: '2 minutes',
  localRetryThreshold: '10 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds' },
});

/**
 * A settlement shard (`settlement:{shard}`), started by signal-with-start from
 * the gateways' metering batchers. A wake-up names the accounts with new
 * usage; the shard settles them in set-based passes (a fixed number of
 * statements per pass, up to SETTLEMENT_BATCH_EVENTS events), looping while
 * more is pending, and sweeps every account of the shard every `sweepMs`.
 * usage_events is the truth: a wake-up only says where to look first, so a
 * lost one delays settlement until the sweep and a duplicated one finds
 * nothing left. It continues as new, carrying what is still pending, before
 * its history grows long.
 */
export async function settlementShard(input: SettlementShardInput): Promise<void> {
  const state: SettlementShardState = {
    shard: input.shard,
    wakeups: 0,
    eventsSignalled: 0,
    eventsSettled: 0,
    costSettled: '0',
    passes: 0,
    sweeps: 0,
    pendingAccounts: [],
    // Not at start: a shard starts with the wake-up that names its accounts. `mixroute settlement
    // migrate` asks for a sweep of every shard; otherwise the sweep timer comes round.
    sweepPending: false,
    generation: 0,
    ...input.state,
  };
  const maxHistory = input.maxHistoryEvents ?? DEFAULT_MAX_HISTORY_EVENTS;
  const sweep = input.sweepMs ?? 60_000;
  const minInterval = input.minIntervalMs ?? 0;
  // Insertion order is history order, so which accounts go first is deterministic.
  const pending = new Set(state.pendingAccounts);

  setHandler(settlementWakeSignal, (s) => {
    state.wakeups += 1;
    state.eventsSignalled += s.events;
    if (s.sweep) state.sweepPending = true;
    for (const a of s.accounts ?? []) pending.add(a);
    if (pending.size > MAX_PENDING_ACCOUNTS) {
      pending.clear();
      state.sweepPending = true;
    }
  });
  setHandler(settlementShardStatusQuery, () => ({ ...state, pendingAccounts: [...pending] }));

  const historyIsLong = () => workflowInfo().continueAsNewSuggested || workflowInfo().historyLength >= maxHistory;
  void (async () => {
    for (;;) {
      await sleep(sweep);
      state.sweepPending = true;
    }
  })();

  const pass = async (accounts?: string[]): Promise<boolean> => {
    const r = await settleShard({ shard: input.shard, ...(accounts ? { accounts } : {}) });
    if (r.events > 0) {
      state.passes += 1;
      state.eventsSettled += r.events;
      state.costSettled = toAmountString(new Money(state.costSettled).plus(r.cost));
    }
    return r.more;
  };

  for (;;) {
    await condition(() => pending.size > 0 || state.sweepPending || historyIsLong());
    while ((pending.size > 0 || state.sweepPending) && !historyIsLong()) {
      if (state.sweepPending) {
        // A sweep covers every account named so far.
        state.sweepPending = false;
        pending.clear();
        state.sweeps += 1;
        let more = await pass();
        while (more && !historyIsLong()) more = await pass();
        // Cut short by a long history: the next generation sweeps again (the accounts it named were
        // forgotten when the sweep began). Only the continue-as-new input changes, not the commands.
        if (more) state.sweepPending = true;
        continue;
      }
      const accounts = [...pending].slice(0, ACCOUNTS_PER_PASS);
      for (const a of accounts) pending.delete(a);
      let more = await pass(accounts);
      while (more && !historyIsLong()) more = await pass(accounts);
      // Cut short by a long history: the next generation finishes these accounts.
      if (more) for (const a of accounts) pending.add(a);
    }
    if (historyIsLong()) {
      await condition(allHandlersFinished);
      await continueAsNew<typeof settlementShard>({
        ...input,
        state: { ...state, pendingAccounts: [...pending], generation: state.generation + 1 },
      });
    }
    if (minInterval > 0) await sleep(minInterval);
  }
}
