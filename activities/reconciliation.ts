import { failingPermanentlyOn } from './errors';
import { withHeartbeat } from './heartbeat';
import { UnknownCheckError, UnknownReportError, WindowError, type CheckName, type Scope } from '../src/reconciliation/reconciliation.rules';
import { reconciliationService, type ReconciliationDeps, type ReportSummary } from '../src/reconciliation/reconciliation.service';
import type { ReconcileCheckCounts } from '../workflows/messages';

/**
 * Reconciliation activities. The report id is the workflow's first run id,
 * so every retry of every activity works on the one report. Each returns
 * counts only; discrepancies stay in PostgreSQL.
 */
export function reconciliationActivities(deps: Required<Pick<ReconciliationDeps, 'db' | 'clock' | 'billing' | 'reconcile'>>) {
  const reconciliation = reconciliationService(deps);

  return {
    async openReconciliationReport(input: { reportId: string; workflowId: string; scope: Scope; label: string; requestedBy: string }): Promise<void> {
      await failingPermanentlyOn([[WindowError, 'InvalidWindow']], () => reconciliation.openReport(input));
    },

    async runReconciliationCheck(input: { reportId: string; check: CheckName }): Promise<ReconcileCheckCounts> {
      return withHeartbeat({ everyMs: 5_000 }, (beat) =>
        failingPermanentlyOn(
          [
            [UnknownCheckError, 'UnknownCheck'],
            [UnknownReportError, 'UnknownReport'],
          ],
          () => reconciliation.runCheck(input, beat),
        ),
      );
    },

    async closeReconciliationReport(input: { reportId: string }): Promise<ReportSummary> {
      return reconciliation.closeReport(input);
    },
  };
}
