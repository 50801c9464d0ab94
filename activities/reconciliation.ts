import { ApplicationFailure, Context } from '@temporalio/activity';
import { Money } from '../src/shared/money.rules';
import { reconcileWindow, WindowError, type CheckName, type Scope } from '../src/reconciliation/reconciliation.rules';
import type { Clock } from '../src/clock';
import type { Config } from '../src/config';
import type { Db } from '../src/db/knex';
import { CHECK_FUNCTIONS, closeReport, openReport, recordCheck, type ReportSummary } from '../src/reconciliation/reconciliation.data';
import type { ReconcileCheckCounts } from '../workflows/messages';

/**
 * Reconciliation activities. The report id is the workflow's first run id,
 * so every retry of every activity works on the one report. Each returns
 * counts only; discrepancies stay in PostgreSQL.
 */
export function reconciliationActivities({ db, clock, billing, reconcile }: { db: Db; clock: Clock; billing: Config['billing']; reconcile: Config['reconcile'] }) {
  const overdraftAllowance = new Money(billing.overdraftAllowance);

  async function window(reportId: string) {
    const r = await db('reconciliation_reports').where({ id: reportId }).first('scope', 'label');
    if (!r) throw ApplicationFailure.nonRetryable(`no reconciliation report ${reportId}`, 'UnknownReport');
    return reconcileWindow(r.scope as Scope, r.label);
  }

  return {
    async openReconciliationReport(input: { reportId: string; workflowId: string; scope: Scope; label: string; requestedBy: string }): Promise<void> {
      let w;
      try {
        w = reconcileWindow(input.scope, input.label);
      } catch (err) {
        if (err instanceof WindowError) throw ApplicationFailure.nonRetryable(err.message, 'InvalidWindow');
        throw err;
      }
      await openReport(db, {
        id: input.reportId,
        workflowId: input.workflowId,
        window: w,
        trigger: input.requestedBy === 'system:schedule' ? 'schedule' : 'staff',
        requestedBy: input.requestedBy,
      });
    },

    async runReconciliationCheck(input: { reportId: string; check: CheckName }): Promise<ReconcileCheckCounts> {
      const fn = CHECK_FUNCTIONS[input.check];
      if (!fn) throw ApplicationFailure.nonRetryable(`unknown check ${input.check}`, 'UnknownCheck');
      const beat = setInterval(() => Context.current().heartbeat(), 5_000);
      try {
        const started = performance.now();
        const found = await fn({
          db,
          reportId: input.reportId,
          window: await window(input.reportId),
          now: clock.now(),
          settlementLagS: reconcile.settlementLagS,
          paymentGraceS: reconcile.paymentGraceS,
          overdraftAllowance,
          onProgress: () => Context.current().heartbeat(),
        });
        return await recordCheck(db, input.reportId, input.check, found, performance.now() - started);
      } finally {
        clearInterval(beat);
      }
    },

    async closeReconciliationReport(input: { reportId: string }): Promise<ReportSummary> {
      return closeReport(db, input.reportId);
    },
  };
}
