import type { Db } from '../db/knex';
import { assertResolutionsAllowed, fingerprint, type CheckName, type Discrepancy, type ReconcileWindow, type Scope, type Verdict } from './reconciliation.rules';
import { diff } from './checks/amounts.rules';

/**
 * Reconciliation reports: a report per run, its discrepancies (unique per
 * report and fingerprint) and each check's counts. Nothing else is written
 * outside these tables except by a check's safe repairs.
 */

export interface CheckCounts {
  found: number;
  repaired: number;
  needsAttention: number;
  new: number;
}

export async function openReport(
  db: Db,
  input: { id: string; workflowId: string; window: ReconcileWindow; trigger: 'schedule' | 'staff'; requestedBy: string },
): Promise<void> {
  await db('reconciliation_reports')
    .insert({
      id: input.id,
      workflow_id: input.workflowId,
      scope: input.window.scope,
      label: input.window.label,
      window_start: input.window.start,
      window_end: input.window.end,
      trigger: input.trigger,
      requested_by: input.requestedBy,
    })
    .onConflict('id')
    .ignore();
}

/**
 * Stores a check's discrepancies (a retried check adds nothing: unique per
 * report and fingerprint) and its counts in the report.
 */
export async function recordCheck(db: Db, reportId: string, check: CheckName, found: Discrepancy[], ms: number): Promise<CheckCounts> {
  assertResolutionsAllowed(check, found);
  for (let i = 0; i < found.length; i += 1_000) {
    const chunk = found.slice(i, i + 1_000).map((d) => ({
      check_name: check,
      kind: d.kind,
      fingerprint: fingerprint(d.kind, d.subject),
      account_id: d.accountId,
      subject: d.subject,
      expected: d.expected,
      actual: d.actual,
      difference: d.expected !== null && d.actual !== null ? diff(d.expected, d.actual) : null,
      unit: d.unit,
      details: d.details,
      resolution: d.resolution,
      repair_ref: d.repairRef,
    }));
    await db.raw(
      `INSERT INTO reconciliation_discrepancies
              (report_id, check_name, kind, fingerprint, account_id, subject, expected, actual, difference, unit, details, resolution, repair_ref, first_report_id)
       SELECT ?::uuid, x.check_name, x.kind, x.fingerprint, x.account_id, x.subject, x.expected, x.actual, x.difference, x.unit, x.details, x.resolution, x.repair_ref,
              COALESCE((SELECT d.report_id FROM reconciliation_discrepancies d WHERE d.fingerprint = x.fingerprint ORDER BY d.id LIMIT 1), ?::uuid)
         FROM jsonb_to_recordset(?::jsonb) AS x(check_name text, kind text, fingerprint text, account_id uuid, subject text, expected numeric, actual numeric,
                                                difference numeric, unit text, details jsonb, resolution text, repair_ref text)
       ON CONFLICT (report_id, fingerprint) DO NOTHING`,
      [reportId, reportId, JSON.stringify(chunk)],
    );
  }
  const counts = await checkCounts(db, reportId, check);
  await db.raw(`UPDATE reconciliation_reports SET checks = checks || jsonb_build_object(?::text, ?::jsonb) WHERE id = ?`, [
    check,
    JSON.stringify({ ...counts, ms: Math.round(ms) }),
    reportId,
  ]);
  return counts;
}

/** A report's counts, or one check's. */
export async function checkCounts(db: Db, reportId: string, check?: CheckName): Promise<CheckCounts> {
  const q = db('reconciliation_discrepancies')
    .where({ report_id: reportId })
    .first(
      db.raw('count(*)::int AS found'),
      db.raw(`count(*) FILTER (WHERE resolution = 'repaired')::int AS repaired`),
      db.raw(`count(*) FILTER (WHERE resolution = 'needs_attention')::int AS needs_attention`),
      db.raw('count(*) FILTER (WHERE first_report_id = report_id)::int AS new'),
    );
  if (check) q.where({ check_name: check });
  const r = await q;
  return { found: r.found, repaired: r.repaired, needsAttention: r.needs_attention, new: r.new };
}

/** Closes a report with its verdict and final counts; a retry keeps the first finish time. */
export async function finishReport(db: Db, reportId: string, v: Verdict, counts: CheckCounts): Promise<void> {
  await db('reconciliation_reports').where({ id: reportId }).update({
    status: 'finished',
    verdict: v,
    discrepancies: counts.found,
    repaired: counts.repaired,
    needs_attention: counts.needsAttention,
    new_discrepancies: counts.new,
    finished_at: db.raw('COALESCE(finished_at, now())'),
  });
}

/** The window a report covers, as stored when it was opened; undefined for an unknown report. */
export async function reportWindowOf(db: Db, reportId: string): Promise<{ scope: Scope; label: string } | undefined> {
  return db('reconciliation_reports').where({ id: reportId }).first('scope', 'label');
}

/** Reports, newest first; `before` is the startedAt of the last report of the previous page. */
export async function listReports(
  db: Db,
  input: { day?: string; period?: string; verdict?: Verdict; limit: number; before?: string },
): Promise<Record<string, any>[]> {
  const q = db('reconciliation_reports').orderBy('started_at', 'desc').limit(input.limit);
  if (input.day) q.where({ scope: 'day', label: input.day });
  if (input.period) q.where({ scope: 'period', label: input.period });
  if (input.verdict) q.where({ verdict: input.verdict });
  if (input.before) q.where('started_at', '<', input.before);
  return q;
}

export async function findReport(db: Db, id: string): Promise<Record<string, any> | undefined> {
  return db('reconciliation_reports').where({ id }).first();
}

/** A report's discrepancies in id order; `after` is the id of the last one of the previous page. */
export async function listDiscrepancies(
  db: Db,
  input: { id: string; resolution?: 'repaired' | 'needs_attention'; limit: number; after?: number },
): Promise<Record<string, any>[]> {
  const q = db('reconciliation_discrepancies').where({ report_id: input.id }).orderBy('id').limit(input.limit);
  if (input.resolution) q.where({ resolution: input.resolution });
  if (input.after !== undefined) q.where('id', '>', input.after);
  return q;
}
