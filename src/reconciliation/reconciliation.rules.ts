/**
 * Reconciliation: the vocabulary of a report, with no I/O.
 *
 * A reconciliation covers a window of time, a UTC day or a calendar month,
 * and runs six checks. Each check produces typed discrepancies with the
 * amounts on both sides. A discrepancy is either repaired (only the safe
 * classes below, each through its own idempotent write) or left for billing
 * staff; nothing else is ever changed by reconciliation.
 */
import { billingPeriod } from '../invoicing/invoice.rules';

/**
 * The checks, in the order a run makes them: usage first, so that its repairs
 * are in place before balances are compared. Each covers the report's window
 * (a UTC day or a month) and lives in its own file of checks/:
 * - usage: usage events against settlement, their ledger deductions and
 *   usage_hourly; settles overdue usage, posts missing deductions
 *   (checks/usageVsLedger.service.ts, its queries in checks/usageVsLedger.data.ts)
 * - payments: succeeded payments against top-up entries (checks/paymentsVsTopups.data.ts)
 * - balances: each balance against the sum of its ledger entries, all time (checks/ledgerBalances.data.ts)
 * - invoices: invoices priced again from their usage, gapless numbers (checks/invoicesVsUsage.data.ts)
 * - provider_usage: providers' statements against our metering, per day and model
 *   (checks/providerUsageVsStatements.data.ts)
 * - invoice_payments: payment applications against the provider's payments and
 *   their overpayment credits, invoices' amounts paid against their applications
 *   (checks/invoicePayments.data.ts). Last, and only in runs started after it
 *   was added (workflows/reconcile.ts, patch 'reconcile-invoice-payments').
 * - register: each provider that received traffic in the window has a complete
 *   entry in the processing register (checks/providersRegister.data.ts). After
 *   invoice_payments, only in runs started after it was added (patch
 *   'reconcile-register'). Its findings need compliance staff, so they count
 *   toward "needs attention" like any other.
 * CHECK_FUNCTIONS in reconciliation.service.ts maps each name to its function.
 */
export const CHECKS = ['usage', 'payments', 'balances', 'invoices', 'provider_usage', 'invoice_payments', 'register'] as const;
export type CheckName = (typeof CHECKS)[number];

/** Every kind of discrepancy, with the check that finds it and whether reconciliation may repair it. */
export const DISCREPANCY_KINDS = {
  /** Usage older than the settlement lag that no settlement picked up. Repaired: settled. */
  unsettled_usage: { check: 'usage', safe: true },
  /** A settled batch whose `usage` ledger entry is missing. Repaired: the entry is posted with the batch's own key. */
  usage_deduction_missing: { check: 'usage', safe: true },
  /** A batch's ledger entry differs from the cost of its events. */
  usage_deduction_mismatch: { check: 'usage', safe: false },
  /** A `usage` ledger entry whose batch has no events. */
  usage_deduction_without_events: { check: 'usage', safe: false },
  /** An account's settled events and its usage_hourly rows for the window disagree. */
  usage_hourly_mismatch: { check: 'usage', safe: false },
  /** A succeeded payment without a top-up entry. */
  payment_without_topup: { check: 'payments', safe: false },
  /** A payment credited more than once. */
  payment_duplicate_topup: { check: 'payments', safe: false },
  /** A top-up entry whose amount or account differs from its payment's. */
  topup_amount_mismatch: { check: 'payments', safe: false },
  /** A top-up entry without a succeeded payment. */
  topup_without_payment: { check: 'payments', safe: false },
  /** account_balances.balance is not the sum of the account's entries. */
  balance_mismatch: { check: 'balances', safe: false },
  /** A finalized invoice whose lines or totals differ from its usage priced again. */
  invoice_mismatch: { check: 'invoices', safe: false },
  /** A number of an invoice series that no invoice or credit note carries. */
  invoice_number_gap: { check: 'invoices', safe: false },
  /** A provider's statement and our metering disagree for a day and model. */
  provider_usage_mismatch: { check: 'provider_usage', safe: false },
  /** A card payment applied to an invoice without the provider's payment record (payments, or our payment request for it). */
  invoice_payment_without_payment: { check: 'invoice_payments', safe: false },
  /** A card payment applied to an invoice whose payment record differs: amount, account, currency or status. */
  invoice_payment_mismatch: { check: 'invoice_payments', safe: false },
  /** An application with an overpayment (received - amount > 0) whose ledger credit is missing. */
  overpayment_credit_missing: { check: 'invoice_payments', safe: false },
  /** An application whose ledger credit differs from its overpayment (amount or account). */
  overpayment_credit_mismatch: { check: 'invoice_payments', safe: false },
  /** An invoice whose applications sum to more than its amount due minus its credit notes. */
  invoice_overapplied: { check: 'invoice_payments', safe: false },
  /** An invoice marked paid (an invoice.paid event) whose applications and credit notes do not cover it. */
  invoice_paid_not_covered: { check: 'invoice_payments', safe: false },
  /** A provider that received traffic in the window with no register entry, or an incomplete one (details: provider, missing facts). */
  provider_without_register_entry: { check: 'register', safe: false },
} as const satisfies Record<string, { check: CheckName; safe: boolean }>;
export type DiscrepancyKind = keyof typeof DISCREPANCY_KINDS;

export type Resolution = 'repaired' | 'needs_attention';
export type Verdict = 'clean' | 'repaired' | 'needs_attention';

export interface Discrepancy {
  kind: DiscrepancyKind;
  /** What it is about: a payment, a settlement key, an account, an invoice number, provider/day/model. */
  subject: string;
  accountId: string | null;
  /** Our books' side and the other side, in `unit`; difference = actual - expected. */
  expected: string | null;
  actual: string | null;
  unit: string;
  /** Further figures (token counts, ids). Never personal data, never content. */
  details: Record<string, unknown>;
  resolution: Resolution;
  /** For a repair: the idempotency key of the write that repaired it. */
  repairRef: string | null;
}

/** The same problem found again has the same fingerprint, in any report. */
export function fingerprint(kind: DiscrepancyKind, subject: string): string {
  return `${kind}:${subject}`;
}

/** Only the safe classes may ever be repaired, and only by their own check: a bug that says otherwise stops here. */
export function assertResolutionsAllowed(check: CheckName, found: Discrepancy[]): void {
  for (const d of found) {
    const k = DISCREPANCY_KINDS[d.kind];
    if (k.check !== check || (d.resolution === 'repaired' && !k.safe)) throw new Error(`discrepancy ${d.kind} cannot be ${d.resolution} by the ${check} check`);
  }
}

export function verdict(counts: { repaired: number; needsAttention: number }): Verdict {
  if (counts.needsAttention > 0) return 'needs_attention';
  if (counts.repaired > 0) return 'repaired';
  return 'clean';
}

export type Scope = 'day' | 'period';

export interface ReconcileWindow {
  scope: Scope;
  /** '2026-11-25' for a day, '2026-11' for a month. */
  label: string;
  /** ISO instants, [start, end). */
  start: string;
  end: string;
}

export class WindowError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WindowError';
  }
}

/** A run names a report that was never opened. */
export class UnknownReportError extends Error {
  constructor(reportId: string) {
    super(`no reconciliation report ${reportId}`);
    this.name = 'UnknownReportError';
  }
}

/** A run asks for a check that is not one of CHECKS. */
export class UnknownCheckError extends Error {
  constructor(check: string) {
    super(`unknown check ${check}`);
    this.name = 'UnknownCheckError';
  }
}

const DAY = /^(\d{4})-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$/;

/** A UTC day 'YYYY-MM-DD' or a month 'YYYY-MM' as a window. Throws WindowError on anything else. */
export function reconcileWindow(scope: Scope, label: string): ReconcileWindow {
  if (scope === 'period') {
    try {
      const { start, end } = billingPeriod(label);
      return { scope, label, start, end };
    } catch {
      throw new WindowError(`period must be YYYY-MM, got ${JSON.stringify(label)}`);
    }
  }
  const m = DAY.exec(label);
  const start = m ? new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]))) : null;
  if (!m || !start || start.toISOString().slice(0, 10) !== label) throw new WindowError(`day must be a calendar date YYYY-MM-DD, got ${JSON.stringify(label)}`);
  return { scope, label, start: start.toISOString(), end: new Date(start.getTime() + 86_400_000).toISOString() };
}

/** The UTC day before the instant: what the daily run reconciles. */
export function previousUtcDay(now: Date): string {
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()) - 86_400_000).toISOString().slice(0, 10);
}
