import { patched, proxyActivities, setHandler, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { CHECKS, previousUtcDay } from '../src/reconciliation/reconciliation.rules';
import { reconcileStatusQuery, type ReconcileInput, type ReconcileResult, type ReconcileState } from './messages';

const { openReconciliationReport, closeReconciliationReport } = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds' },
});

// A check over a month of a busy platform aggregates tens of millions of rows;
// heartbeats tell a dead worker from a long statement.
const { runReconciliationCheck } = proxyActivities<Activities>({
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: '2 minutes',
  retry: { initialInterval: '5 seconds', maximumInterval: '1 minute', maximumAttempts: 10 },
});

/**
 * `reconcile:{scope}:{label}` (on demand) or the daily schedule's run: opens
 * a report (its id is this workflow's first run id), runs the checks in
 * order, usage first so that its repairs are in place before balances are
 * compared, and closes the report with a verdict. Carries ids and counts only.
 */
export async function reconcile(input: ReconcileInput): Promise<ReconcileResult> {
  const info = workflowInfo();
  const reportId = info.firstExecutionRunId;
  // The schedule passes no day: the UTC day before this run started (deterministic: workflow time).
  const scope = input.scope === 'previous-day' ? 'day' : input.scope;
  const label = input.scope === 'previous-day' ? previousUtcDay(new Date(info.startTime)) : input.label!;
  const state: ReconcileState = { reportId, label, status: 'running', current: null, checks: {} };
  setHandler(reconcileStatusQuery, () => state);
  upsertSearchAttributes({ MixrouteKind: ['reconcile'], BillingPeriod: [label], ProcessStatus: ['running'] });

  await openReconciliationReport({ reportId, workflowId: info.workflowId, scope, label, requestedBy: input.requestedBy });
  for (const check of CHECKS) {
    // Added after runs were recorded: a run started before it replays without it.
    if (check === 'invoice_payments' && !patched('reconcile-invoice-payments')) continue;
    if (check === 'register' && !patched('reconcile-register')) continue;
    state.current = check;
    state.checks[check] = await runReconciliationCheck({ reportId, check });
  }
  state.current = null;
  const summary = await closeReconciliationReport({ reportId });
  state.status = 'finished';
  upsertSearchAttributes({ ProcessStatus: [summary.verdict] });
  return { ...summary, scope, label, checks: state.checks };
}
