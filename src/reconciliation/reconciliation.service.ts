import { createHash } from 'node:crypto';
import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import { z } from 'zod';
import { Money } from '../shared/money.rules';
import { reconcileWindow, UnknownCheckError, UnknownReportError, verdict, type CheckName, type Scope, type Verdict } from './reconciliation.rules';
import { parseStatement, StatementError } from './providerStatement.rules';
import type { Clock } from '../clock';
import type { Config } from '../config';
import type { Db } from '../db/knex';
import type { CheckFunction } from './checks/checkContext.data';
import { checkInvoices } from './checks/invoicesVsUsage.data';
import { checkInvoicePayments } from './checks/invoicePayments.data';
import { checkBalances } from './checks/ledgerBalances.data';
import { checkPayments } from './checks/paymentsVsTopups.data';
import { checkProviderUsage } from './checks/providerUsageVsStatements.data';
import { checkProvidersRegister } from './checks/providersRegister.data';
import { checkUsage } from './checks/usageVsLedger.service';
import { checkCounts, findReport, finishReport, listDiscrepancies, listReports, openReport, recordCheck, reportWindowOf, type CheckCounts } from './reports.data';
import { providerNamed, upsertStatementRows } from './statements.data';
import { DependencyUnavailableError, NotFoundError, ValidationError } from '../errors';
import { validate } from '../shared/validate';
import { workflowIds } from '../temporal/conventions';
import type { ReconcileResult } from '../../workflows/messages';

/**
 * Reconciliation for billing staff (CLI and admin API): start a run for a day
 * or a month, list and read reports, import providers' usage statements; and
 * for the `reconcile` workflow's activities: open a report, run one check and
 * record what it found, close the report with its verdict.
 *
 * The run for a window is the workflow `reconcile:{day|period}:{label}`.
 * Asking again while it runs returns that run; after it finished, a new run
 * starts (a new report: the books may have changed since), and a
 * discrepancy found again is marked as seen before, not new.
 */
const isCalendarDate = (v: string) => {
  const t = Date.parse(`${v}T00:00:00Z`);
  return Number.isFinite(t) && new Date(t).toISOString().slice(0, 10) === v;
};
const DAY = z
  .string()
  .regex(/^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$/, 'day must be YYYY-MM-DD')
  .refine(isCalendarDate, 'day is not a calendar date');
const PERIOD = z.string().regex(/^\d{4}-(0[1-9]|1[0-2])$/, 'period must be YYYY-MM');

export const startReconcileInput = z
  .strictObject({ day: DAY.optional(), period: PERIOD.optional() })
  .refine((v) => (v.day === undefined) !== (v.period === undefined), { message: 'give exactly one of day (YYYY-MM-DD) or period (YYYY-MM)', path: ['day'] });

export const listReportsInput = z.strictObject({
  day: DAY.optional(),
  period: PERIOD.optional(),
  verdict: z.enum(['clean', 'repaired', 'needs_attention']).optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  before: z.iso.datetime({ offset: true, error: 'before must be an ISO timestamp (the startedAt of the last report of the previous page)' }).optional(),
});

export const showReportInput = z.strictObject({
  id: z.uuid({ error: 'id must be a report id (UUID)' }),
  resolution: z.enum(['repaired', 'needs_attention']).optional(),
  limit: z.coerce.number().int().min(1).max(1_000).default(200),
  after: z.coerce.number().int().min(0).optional(),
});

export const importStatementInput = z.strictObject({
  provider: z.string().trim().min(1, 'provider is required'),
  csv: z.string().min(1, 'the statement is empty').max(20_000_000, 'the statement is larger than 20 MB: split it by month'),
});

export interface StartedReconciliation {
  workflowId: string;
  reportId: string;
  started: boolean;
}

function reportView(r: any) {
  return {
    id: r.id,
    scope: r.scope,
    label: r.label,
    windowStart: new Date(r.window_start).toISOString(),
    windowEnd: new Date(r.window_end).toISOString(),
    trigger: r.trigger,
    requestedBy: r.requested_by,
    status: r.status,
    verdict: r.verdict,
    counts: { discrepancies: r.discrepancies, repaired: r.repaired, needsAttention: r.needs_attention, new: r.new_discrepancies },
    checks: r.checks,
    startedAt: new Date(r.started_at).toISOString(),
    finishedAt: r.finished_at ? new Date(r.finished_at).toISOString() : null,
    workflowId: r.workflow_id,
  };
}

function discrepancyView(d: any) {
  return {
    id: Number(d.id),
    check: d.check_name,
    kind: d.kind,
    resolution: d.resolution,
    subject: d.subject,
    accountId: d.account_id,
    expected: d.expected,
    actual: d.actual,
    difference: d.difference,
    unit: d.unit,
    details: d.details,
    repairRef: d.repair_ref,
    new: d.first_report_id === d.report_id,
    firstReportId: d.first_report_id,
  };
}

/** Each check of CHECKS (reconciliation.rules.ts), one file each in checks/. */
export const CHECK_FUNCTIONS: Record<CheckName, CheckFunction> = {
  usage: checkUsage,
  payments: checkPayments,
  balances: checkBalances,
  invoices: checkInvoices,
  provider_usage: checkProviderUsage,
  invoice_payments: checkInvoicePayments,
  register: checkProvidersRegister,
};

export interface ReportSummary extends CheckCounts {
  reportId: string;
  verdict: Verdict;
}

/** Closes a report: its verdict follows from what its checks found. */
export async function closeReport(db: Db, reportId: string): Promise<ReportSummary> {
  const counts = await checkCounts(db, reportId);
  const v = verdict(counts);
  await finishReport(db, reportId, v, counts);
  return { reportId, verdict: v, ...counts };
}

export interface ReconciliationDeps {
  db: Db;
  clock: Clock;
  /** Starting and waiting for runs. */
  client?: Client;
  taskQueue?: string;
  /** Running checks (the worker's activities). */
  billing?: Pick<Config['billing'], 'overdraftAllowance'>;
  reconcile?: Pick<Config['reconcile'], 'settlementLagS' | 'paymentGraceS'>;
}

export function reconciliationService(deps: ReconciliationDeps) {
  const { db } = deps;
  return {
    /** Opens the run's report (a retry finds it open). Throws WindowError for a label that is not a day or month. */
    async openReport(input: { reportId: string; workflowId: string; scope: Scope; label: string; requestedBy: string }): Promise<void> {
      const w = reconcileWindow(input.scope, input.label);
      await openReport(db, {
        id: input.reportId,
        workflowId: input.workflowId,
        window: w,
        trigger: input.requestedBy === 'system:schedule' ? 'schedule' : 'staff',
        requestedBy: input.requestedBy,
      });
    },

    /**
     * Runs one check over the report's window and records what it found; a
     * retry records nothing twice. `onProgress` is called between steps of a
     * long check.
     */
    async runCheck(input: { reportId: string; check: CheckName }, onProgress?: () => void): Promise<CheckCounts> {
      if (!deps.billing || !deps.reconcile) throw new DependencyUnavailableError('reconciliation checks need the billing and reconcile settings');
      const fn = CHECK_FUNCTIONS[input.check];
      if (!fn) throw new UnknownCheckError(input.check);
      const started = performance.now();
      const r = await reportWindowOf(db, input.reportId);
      if (!r) throw new UnknownReportError(input.reportId);
      const found = await fn({
        db,
        reportId: input.reportId,
        window: reconcileWindow(r.scope, r.label),
        now: deps.clock.now(),
        settlementLagS: deps.reconcile.settlementLagS,
        paymentGraceS: deps.reconcile.paymentGraceS,
        overdraftAllowance: new Money(deps.billing.overdraftAllowance),
        onProgress,
      });
      return recordCheck(db, input.reportId, input.check, found, performance.now() - started);
    },

    async closeReport(input: { reportId: string }): Promise<ReportSummary> {
      return closeReport(db, input.reportId);
    },

    async start(raw: unknown, actor: string): Promise<StartedReconciliation> {
      const input = validate(startReconcileInput, raw);
      if (!deps.client || !deps.taskQueue) throw new DependencyUnavailableError('reconciliation runs need Temporal');
      const scope = input.day ? 'day' : 'period';
      const label = (input.day ?? input.period)!;
      const w = reconcileWindow(scope, label);
      if (new Date(w.start) > deps.clock.now()) throw new ValidationError(`${label} has not started yet: there is nothing to reconcile`, [{ field: scope, message: 'in the future' }]);
      const workflowId = workflowIds.reconcile(scope, label);
      try {
        const handle = await deps.client.workflow.start('reconcile', {
          taskQueue: deps.taskQueue,
          workflowId,
          args: [{ scope, label, requestedBy: actor }],
          workflowIdReusePolicy: 'ALLOW_DUPLICATE',
        });
        return { workflowId, reportId: handle.firstExecutionRunId, started: true };
      } catch (err) {
        if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
        const d = await deps.client.workflow.getHandle(workflowId).describe();
        return { workflowId, reportId: d.runId, started: false };
      }
    },

    /** Waits for a run started by `start` and returns its result. */
    async wait(started: StartedReconciliation): Promise<ReconcileResult> {
      if (!deps.client) throw new DependencyUnavailableError('reconciliation runs need Temporal');
      return deps.client.workflow.getHandle(started.workflowId, started.reportId).result();
    },

    async list(raw: unknown) {
      const input = validate(listReportsInput, raw);
      const rows = await listReports(db, input);
      const items = rows.map(reportView);
      return { items, nextPage: rows.length === input.limit ? { before: items.at(-1)!.startedAt } : null };
    },

    async get(raw: unknown) {
      const input = validate(showReportInput, raw);
      const report = await findReport(db, input.id);
      if (!report) throw new NotFoundError(`reconciliation report ${input.id} does not exist`);
      const rows = await listDiscrepancies(db, input);
      const discrepancies = rows.map(discrepancyView);
      return { ...reportView(report), discrepancies, nextPage: rows.length === input.limit ? { after: discrepancies.at(-1)!.id } : null };
    },

    async importProviderStatement(raw: unknown, actor: string) {
      const input = validate(importStatementInput, raw);
      const provider = await providerNamed(db, input.provider);
      if (provider === undefined) throw new ValidationError(`provider ${input.provider} does not exist`, [{ field: 'provider', message: 'unknown provider' }]);
      let rows;
      try {
        rows = parseStatement(input.csv);
      } catch (err) {
        if (err instanceof StatementError) throw new ValidationError(err.message, err.problems.map((p) => ({ field: 'csv', message: p })));
        throw err;
      }
      const sha256 = createHash('sha256').update(input.csv).digest('hex');
      const statement = { provider, rows, sha256, actor };
      await db.transaction((trx) => upsertStatementRows(trx, statement));
      return { provider, rows: rows.length, days: [...new Set(rows.map((r) => r.day))].sort(), sha256 };
    },
  };
}

export type ReconciliationService = ReturnType<typeof reconciliationService>;
