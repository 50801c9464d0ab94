/**
 * Sub-processor changes, pure (issue 25 part 6; docs/processing-register.md#sub-processor-changes):
 * which register changes accounts with a data-processing agreement must be
 * told of, when a notice takes effect, and which providers an account's
 * traffic may reach meanwhile.
 */

/** A recipient as these rules see it. */
export interface SubprocessorFacts {
  kind: string;
  role: string | null;
  countries: readonly string[];
}

export type SubprocessorChangeKind = 'recipient_added' | 'countries_added';

/** The statuses of an account's notice; pending and objected keep the recipient out of its traffic. */
export const NOTICE_STATUSES = ['pending', 'accepted', 'objected', 'effective'] as const;
export type NoticeStatus = (typeof NOTICE_STATUSES)[number];
export const HOLDING_STATUSES: readonly NoticeStatus[] = ['pending', 'objected'];

/**
 * Whether a recipient processes customers' API traffic for us, and so is a
 * sub-processor under a customer's data-processing agreement: every model
 * provider and the hosting, and anything staff mark as a sub-processor. The
 * payment processor and the email service (controller data) are not, unless
 * marked so.
 */
export function isSubprocessor(r: SubprocessorFacts): boolean {
  return r.kind === 'model_provider' || r.kind === 'hosting' || r.role === 'sub_processor';
}

/**
 * What a register change means for accounts with an agreement: a new
 * sub-processor (a new entry, or an entry that becomes one), or an existing
 * one with countries it did not process in before (only the new ones are
 * named). Null: nothing to announce (a rename, a new agreement date, a
 * country dropped).
 */
export function subprocessorChangeOf(
  before: SubprocessorFacts | null,
  after: SubprocessorFacts,
): { kind: SubprocessorChangeKind; countries: string[] } | null {
  if (!isSubprocessor(after)) return null;
  if (!before || !isSubprocessor(before)) return { kind: 'recipient_added', countries: [...after.countries].sort() };
  const had = new Set(before.countries);
  const added = after.countries.filter((c) => !had.has(c)).sort();
  return added.length > 0 ? { kind: 'countries_added', countries: added } : null;
}

/** When a notice announced at `announcedAt` with `periodMs` takes effect. */
export function effectiveAt(announcedAt: Date, periodMs: number): Date {
  return new Date(announcedAt.getTime() + periodMs);
}

/**
 * What a notice's decision may become: an account accepts or objects while
 * the notice holds (pending), and may still object after accepting or after
 * the period ran (it then stops using the recipient); an objection is
 * withdrawn by accepting. Null: no change (the same decision twice).
 */
export function decide(current: NoticeStatus, decision: 'accept' | 'object'): NoticeStatus | null {
  if (decision === 'object') return current === 'objected' ? null : 'objected';
  if (current === 'pending' || current === 'objected') return 'accepted';
  return null;
}
