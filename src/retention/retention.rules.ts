/**
 * Retention: the categories of data, their default periods, and the cutoff
 * before which a category's data may go.
 *
 * The period in force is the category's row of retention_policies: the
 * migrations seed it with DEFAULT_POLICIES and admins change it (audited in
 * retention_policy_changes). What an expiry keeps back whatever the cutoff
 * (accounts under an open legal hold; usage not yet billed) is decided in the
 * queries of retention.data.ts, which see the holds and the billing state.
 */

export type RetentionUnit = 'days' | 'years_after_year_end';
export type RetentionAction = 'minimise' | 'delete' | 'erase_contact';

export interface Policy {
  category: string;
  period: number;
  unit: RetentionUnit;
  action: RetentionAction;
  legal_basis: string;
}

/**
 * The periods as the migrations seed them (docs/retention.md gives the legal
 * basis of each). retention.test.ts checks that a migrated database agrees.
 * Billing records count full years from the end of the calendar year they
 * belong to; `usage_events.erased_subjects` has no period of its own: those
 * events go as soon as they are billed.
 */
export const DEFAULT_POLICIES: readonly Pick<Policy, 'category' | 'period' | 'unit' | 'action'>[] = Object.freeze([
  { category: 'usage_events.network', period: 7, unit: 'days', action: 'minimise' },
  { category: 'usage_events', period: 90, unit: 'days', action: 'delete' },
  { category: 'usage_events.erased_subjects', period: 0, unit: 'days', action: 'delete' },
  { category: 'security_events', period: 365, unit: 'days', action: 'delete' },
  { category: 'login_records', period: 180, unit: 'days', action: 'delete' },
  { category: 'notification_outbox', period: 90, unit: 'days', action: 'delete' },
  { category: 'dsr_packages', period: 30, unit: 'days', action: 'delete' },
  { category: 'dsr_requests', period: 730, unit: 'days', action: 'delete' },
  { category: 'closed_accounts', period: 90, unit: 'days', action: 'erase_contact' },
  { category: 'invoices', period: 8, unit: 'years_after_year_end', action: 'delete' },
  { category: 'payments', period: 8, unit: 'years_after_year_end', action: 'delete' },
  { category: 'ledger_entries', period: 10, unit: 'years_after_year_end', action: 'delete' },
  { category: 'page_view_counts', period: 395, unit: 'days', action: 'delete' },
]);

/** The instant before which data of the category may go. Billing periods count from the end of the calendar year. */
export function cutoffFor(policy: Pick<Policy, 'period' | 'unit'>, now: Date): Date {
  if (policy.unit === 'days') return new Date(now.getTime() - policy.period * 86_400_000);
  // Kept `period` full years after the end of the year the record belongs to:
  // a record of year Y may go from 1 January of Y + period + 1.
  return new Date(Date.UTC(now.getUTCFullYear() - policy.period, 0, 1));
}

/** The order categories run in: minimisation before row expiry, usage first (the largest), billing records last. */
const ORDER = ['usage_events.network', 'usage_events', 'usage_events.erased_subjects', 'security_events', 'login_records', 'notification_outbox', 'dsr_packages', 'dsr_requests', 'closed_accounts', 'invoices', 'payments', 'ledger_entries'];

/** The categories of a run in that order; a category not listed runs after them, by name. */
export function runOrder(categories: string[]): string[] {
  const rank = (c: string) => (ORDER.includes(c) ? ORDER.indexOf(c) : ORDER.length);
  return categories.sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}

export interface CategoryOutcome {
  category: string;
  cutoff: string;
  expiredRows: number;
  expiredPartitions: number;
  keptHold: number;
  keptUnbilled: number;
  keptOther: number;
  note: string | null;
}

export function blankOutcome(category: string, cutoff: Date): CategoryOutcome {
  return { category, cutoff: cutoff.toISOString(), expiredRows: 0, expiredPartitions: 0, keptHold: 0, keptUnbilled: 0, keptOther: 0, note: null };
}
