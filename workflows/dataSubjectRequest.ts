import { ActivityFailure, allHandlersFinished, ApplicationFailure, condition, proxyActivities, setHandler, upsertSearchAttributes } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { deadlines, extendedDeadline, pausedDeadline, type Deadlines } from '../src/privacy/deadlines.rules';
import { FULFILMENT_FAILURE_REASONS, outcomeStatus } from '../src/privacy/rights.rules';
import {
  dsrApproveSignal,
  dsrExtendSignal,
  dsrRefuseSignal,
  dsrStatusQuery,
  dsrVerifiedSignal,
  dsrWithdrawSignal,
  type DsrInput,
  type DsrState,
} from './messages';

const acts = proxyActivities<Activities>({
  startToCloseTimeout: '5 minutes',
  retry: { initialInterval: '2 seconds', maximumInterval: '1 minute' },
});

/**
 * `dsr:{requestId}`: one data-subject request from receipt to answer.
 *
 * received -> verifying (a one-time code to the email on record, or a
 * compliance officer's manual check; unverified after the wait -> refused on
 * `identity_not_verified`) -> [awaiting_approval for a correction] ->
 * in_progress (the right's effect on the data) -> completed / partially
 * completed / refused / withdrawn, with the answer sent to the subject; or
 * failed, when the fulfilment cannot succeed on its data (a correction the
 * schemas or the database refuse): recorded for compliance staff, not retried.
 *
 * Alongside, the legal clock: reminders to compliance staff before the due
 * date and an overdue flag at it, both from timers, visible in the
 * `dsrStatus` query and as search attributes (DsrDeadline, DsrOverdue,
 * ProcessStatus). Staff actions arrive as signals that carry codes and staff
 * ids only; explanations and notes are stored in PostgreSQL by the caller.
 */
export async function dataSubjectRequest(input: DsrInput): Promise<DsrState> {
  const opts = input.timers.deadlineOverrideS ? { overrideSeconds: input.timers.deadlineOverrideS } : {};
  let clock: Deadlines = deadlines(input.jurisdiction, input.receivedAt, opts);
  const state: DsrState = {
    requestId: input.requestId,
    type: input.type,
    status: 'received',
    jurisdiction: input.jurisdiction,
    dueDate: clock.dueDate,
    dueAt: clock.dueAt,
    extended: false,
    overdue: false,
    verified: false,
    refusals: [],
    remindersSent: 0,
  };
  let withdrawn = false;
  let approved = false;
  let closed = false;
  let verifiedAt: number | null = null;
  setHandler(dsrStatusQuery, () => state);

  const setStatus = (status: DsrState['status']) => {
    state.status = status;
    upsertSearchAttributes({ ProcessStatus: [status] });
  };
  const moveDeadline = async (next: Deadlines, reason: 'extended' | 'verification_pause') => {
    clock = next;
    state.dueDate = next.dueDate;
    state.dueAt = next.dueAt;
    upsertSearchAttributes({ DsrDeadline: [new Date(next.dueAt)] });
    await acts.dsrDeadlineChanged({ requestId: input.requestId, dueDate: next.dueDate, dueAt: next.dueAt, reason });
  };

  setHandler(dsrVerifiedSignal, () => {
    if (state.verified || closed) return;
    state.verified = true;
    verifiedAt = Date.now();
  });
  setHandler(dsrWithdrawSignal, () => {
    if (!closed && state.status !== 'in_progress') withdrawn = true;
  });
  setHandler(dsrApproveSignal, () => {
    if (state.status === 'awaiting_approval') approved = true;
  });
  setHandler(dsrRefuseSignal, ({ items }) => {
    if (closed || state.status === 'in_progress') return;
    state.refusals.push(...items);
  });
  // One extension, announced before the original deadline (the caller checked and told the subject why).
  setHandler(dsrExtendSignal, async () => {
    if (state.extended || closed || Date.now() >= Date.parse(clock.extensionNoticeBy)) return;
    state.extended = true;
    await moveDeadline(extendedDeadline(input.jurisdiction, input.receivedAt, clock, opts), 'extended');
  });

  upsertSearchAttributes({
    MixrouteKind: ['dsr'],
    DsrType: [input.type],
    DsrDeadline: [new Date(clock.dueAt)],
    DsrOverdue: [false],
    ProcessStatus: ['received'],
  });

  // The legal clock, for as long as the request is open.
  const watcher = (async () => {
    const fired = new Set<string>();
    while (!closed) {
      const due = Date.parse(state.dueAt);
      const pending: { key: string; at: number; kind: 'reminder' | 'overdue' }[] = input.timers.reminderBeforeMs
        .map((ms) => ({ key: `reminder:${ms}:${state.dueAt}`, at: due - ms, kind: 'reminder' as const }))
        .filter((r) => !fired.has(r.key));
      if (!state.overdue) pending.push({ key: `overdue:${state.dueAt}`, at: due, kind: 'overdue' });
      pending.sort((a, b) => a.at - b.at);
      const next = pending[0];
      const seen = state.dueAt;
      if (!next) {
        await condition(() => closed || state.dueAt !== seen);
        continue;
      }
      const wait = next.at - Date.now();
      if (wait > 0 && (await condition(() => closed || state.dueAt !== seen, wait))) continue;
      if (closed) break;
      fired.add(next.key);
      await acts.dsrDeadlineEvent({ requestId: input.requestId, kind: next.kind, key: next.key, dueAt: state.dueAt });
      if (next.kind === 'overdue') {
        state.overdue = true;
        upsertSearchAttributes({ DsrOverdue: [true] });
      } else state.remindersSent++;
    }
  })();

  const finish = async (status: 'completed' | 'partially_completed' | 'refused' | 'withdrawn', fulfilment: Awaited<ReturnType<typeof acts.dsrFulfil>> | null) => {
    await acts.dsrClose({ requestId: input.requestId, status, refusals: state.refusals, fulfilment });
    closed = true;
    setStatus(status);
    await watcher;
    await condition(allHandlersFinished);
    return state;
  };
  const refusedWhole = () => state.refusals.some((r) => r.item === '*');

  setStatus('verifying');
  await acts.dsrOpened({ requestId: input.requestId });
  const settled = await condition(() => state.verified || withdrawn || refusedWhole(), input.timers.verificationWaitMs);
  if (withdrawn) return finish('withdrawn', null);
  if (!settled) {
    state.refusals.push({ item: '*', ground: 'identity_not_verified' });
    return finish('refused', null);
  }
  if (refusedWhole()) return finish('refused', null);
  if (clock.pausesDuringVerification && verifiedAt !== null) {
    // UK GDPR: the time spent confirming identity does not count.
    await moveDeadline(pausedDeadline(clock, Math.max(0, verifiedAt - Date.parse(input.receivedAt)), opts), 'verification_pause');
  }

  if (input.type === 'correction') {
    setStatus('awaiting_approval');
    await acts.dsrAwaitingApproval({ requestId: input.requestId });
    await condition(() => approved || withdrawn || refusedWhole());
    if (withdrawn) return finish('withdrawn', null);
    if (refusedWhole()) return finish('refused', null);
  }

  setStatus('in_progress');
  let fulfilment: Awaited<ReturnType<typeof acts.dsrFulfil>>;
  try {
    fulfilment = await acts.dsrFulfil({ requestId: input.requestId, refusedItems: state.refusals.map((r) => r.item) });
  } catch (err) {
    const reason = dataFailure(err);
    if (reason === null) throw err;
    await acts.dsrFailed({ requestId: input.requestId, reason });
    closed = true;
    state.failureReason = reason;
    setStatus('failed');
    await watcher;
    await condition(allHandlersFinished);
    return state;
  }
  if (fulfilment.refused?.length) state.refusals.push(...fulfilment.refused);
  return finish(outcomeStatus(state.refusals), fulfilment);
}

/** The reason code of a fulfilment that failed on its data, or null for any other failure. */
function dataFailure(err: unknown): string | null {
  const cause = err instanceof ActivityFailure ? err.cause : null;
  if (!(cause instanceof ApplicationFailure) || !cause.nonRetryable || !cause.type) return null;
  return (FULFILMENT_FAILURE_REASONS as readonly string[]).includes(cause.type) ? cause.type : null;
}
