/**
 * The dunning schedule of a postpaid invoice, pure (docs/collections.md).
 *
 * A schedule is a list of steps, each at an offset from the invoice's due
 * date (00:00 UTC of that date, the `anchor`): a `notice` before it, `reminder`s
 * after it, and at most one `suspension`, last. The default: a notice 3 days
 * before, reminders 1 and 7 days after, suspension 14 days after. An invoice
 * is overdue from the day after its due date (src/invoicing/paymentStatus.rules.ts), which
 * is anchor + 1d: so the first reminder goes the moment it is overdue.
 *
 * Written as DUNNING_SCHEDULE: `notice@-3d,reminder@1d,reminder@7d,suspension@14d`
 * (units s, m, h, d). Offsets are milliseconds in the workflow's input, so a
 * test runs a whole schedule in seconds.
 */

export const DUNNING_STEP_KINDS = ['notice', 'reminder', 'suspension'] as const;
export type DunningStepKind = (typeof DUNNING_STEP_KINDS)[number];

export interface DunningStep {
  /** Unique within a schedule, e.g. `reminder+7d`; the key of its dunning_steps row. */
  name: string;
  kind: DunningStepKind;
  /** Milliseconds from the anchor (negative: before the due date). */
  offsetMs: number;
}

export const DEFAULT_DUNNING_SCHEDULE = 'notice@-3d,reminder@1d,reminder@7d,suspension@14d';
/** At most this many steps in a schedule. */
export const MAX_DUNNING_STEPS = 10;
/** No step further than this from the due date. */
const MAX_OFFSET_MS = 366 * 86_400_000;

const UNIT_MS = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

export class DunningScheduleError extends Error {
  override name = 'DunningScheduleError';
}

/** Parses DUNNING_SCHEDULE; throws DunningScheduleError with what is wrong. */
export function parseDunningSchedule(text: string): DunningStep[] {
  const parts = text.split(',').map((p) => p.trim()).filter((p) => p.length > 0);
  if (parts.length === 0) throw new DunningScheduleError('the dunning schedule has no steps');
  if (parts.length > MAX_DUNNING_STEPS) throw new DunningScheduleError(`the dunning schedule has more than ${MAX_DUNNING_STEPS} steps`);
  const steps = parts.map((p) => {
    const m = /^(notice|reminder|suspension)@([+-]?)(\d{1,6})([smhd])$/.exec(p);
    if (!m) throw new DunningScheduleError(`"${p.slice(0, 40)}" is not a step such as reminder@7d (kinds notice, reminder, suspension; units s, m, h, d)`);
    const offsetMs = (m[2] === '-' ? -1 : 1) * Number(m[3]) * UNIT_MS[m[4] as keyof typeof UNIT_MS];
    if (Math.abs(offsetMs) > MAX_OFFSET_MS) throw new DunningScheduleError(`"${p}" is more than 366 days from the due date`);
    const sign = offsetMs < 0 ? '-' : '+';
    return { name: `${m[1]}${sign}${m[3]}${m[4]}`, kind: m[1] as DunningStepKind, offsetMs };
  });
  return validateDunningSteps(steps);
}

/** Checks steps given as input (a workflow's, a test's): sorted by offset, unique names, one suspension at most and last. */
export function validateDunningSteps(steps: readonly DunningStep[]): DunningStep[] {
  const sorted = [...steps].sort((a, b) => a.offsetMs - b.offsetMs);
  if (sorted.length > MAX_DUNNING_STEPS) throw new DunningScheduleError(`more than ${MAX_DUNNING_STEPS} dunning steps`);
  const names = new Set<string>();
  for (const [i, s] of sorted.entries()) {
    if (!/^[a-z]+[+-][0-9a-z]{1,12}$/.test(s.name)) throw new DunningScheduleError(`step name "${s.name.slice(0, 40)}" is not like reminder+7d`);
    if (!(DUNNING_STEP_KINDS as readonly string[]).includes(s.kind)) throw new DunningScheduleError(`step ${s.name} has no kind such as reminder`);
    if (names.has(s.name)) throw new DunningScheduleError(`step ${s.name} appears twice`);
    names.add(s.name);
    const before = sorted[i - 1];
    if (before && before.offsetMs === s.offsetMs) throw new DunningScheduleError(`steps ${before.name} and ${s.name} are at the same time`);
    if (!Number.isInteger(s.offsetMs) || Math.abs(s.offsetMs) > MAX_OFFSET_MS) throw new DunningScheduleError(`step ${s.name} has a bad offset`);
    if (s.kind === 'notice' && s.offsetMs >= UNIT_MS.d) throw new DunningScheduleError(`the notice ${s.name} must come before the invoice is overdue`);
  }
  const suspensions = sorted.filter((s) => s.kind === 'suspension');
  if (suspensions.length > 1) throw new DunningScheduleError('a schedule suspends at most once');
  if (suspensions.length === 1 && sorted.at(-1) !== suspensions[0]) throw new DunningScheduleError('the suspension must be the last step');
  return sorted;
}

/** The anchor of a due date: 00:00 UTC of that day, as epoch milliseconds. */
export function dunningAnchor(dueDate: string): number {
  const ms = /^\d{4}-\d{2}-\d{2}$/.test(dueDate) ? Date.parse(`${dueDate}T00:00:00Z`) : Number.NaN;
  // A day the calendar does not have (2026-02-30) would roll over: refused.
  if (Number.isNaN(ms) || new Date(ms).toISOString().slice(0, 10) !== dueDate) throw new DunningScheduleError(`not a due date: ${dueDate.slice(0, 40)}`);
  return ms;
}

/** When each step is due, epoch milliseconds. */
export const stepDueAt = (anchorMs: number, step: DunningStep) => anchorMs + step.offsetMs;

/** The account event a step sends (suspension sends account.suspended). */
export function stepEventType(kind: DunningStepKind): 'invoice.payment_due' | 'invoice.overdue' | 'account.suspended' {
  return kind === 'notice' ? 'invoice.payment_due' : kind === 'reminder' ? 'invoice.overdue' : 'account.suspended';
}

/** A payment status that ends dunning: nothing more to collect. */
export const endsDunning = (status: string | null | undefined) => status === 'paid' || status === 'void' || status === 'uncollectible' || status === null || status === undefined;
