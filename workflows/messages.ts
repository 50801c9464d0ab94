import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { DunningStep } from '../src/shared/dunning.rules';

/**
 * Messages shared by workflows and their callers, declared once. They carry
 * ids, counts and amounts (decimal strings) only: never payload, never
 * personal data, because a workflow history cannot be erased.
 */

export interface HealthProbeInput {
  probeId: string;
}

export interface HealthProbeResult {
  probeId: string;
  /** Time as PostgreSQL saw it, proving a worker reached the database. */
  databaseTime: string;
  migrationsApplied: number;
  migrationsPending: number;
}

/** What the gateway's metering batcher tells a settlement shard (formerly an account's metering workflow) after a batch reached usage_events. */
export interface UsageRecordedSignal {
  events: number;
  cost: string;
  /** The latest occurred_at in the batch (ISO): a watermark, not a cursor; the database is the truth. */
  lastOccurredAt: string;
  /** For a shard: the accounts with new usage, settled first (a hint; bounded, see `sweep`). */
  accounts?: string[];
  /** For a shard: settle every account of the shard (the hint overflowed, or an operator asked). */
  sweep?: boolean;
}

export interface AccountMeteringState {
  signals: number;
  eventsSignalled: number;
  costSignalled: string;
  lastOccurredAt: string | null;
  /** Settled through the ledger by this entity (all generations). */
  eventsSettled: number;
  costSettled: string;
  settlements: number;
  /** How many times the workflow has continued as new. */
  generation: number;
}

export interface AccountMeteringInput {
  accountId: string;
  state?: AccountMeteringState;
  /** Continue as new at this history length even if the SDK does not suggest it yet. */
  maxHistoryEvents?: number;
  /** Not read since the workflow retired (it settles once and completes); kept so callers' inputs stay valid. */
  settleMinIntervalMs?: number;
  /** Settle even without a signal this often (a lost signal delays settlement, never loses it). */
  sweepMs?: number;
}

/** A top-up or grant to credit once: ids and amounts only. */
export interface TopUpInput {
  /** The payment provider's id (webhooks) or the staff reference. */
  paymentId: string;
  /** 'stripe' for webhook payments, 'manual' for staff entries. */
  provider: string;
  accountId: string;
  amount: string;
  currency: string;
  kind: 'topup' | 'grant';
  /** Who caused it: 'webhook:stripe', 'staff:<token id>', 'cli:<user>'. */
  actor: string;
  /** The provider's customer that paid (webhooks; absent in histories recorded before it existed): checked against the account's. */
  customerId?: string | null;
}

export interface TopUpResult {
  /** The credit's ledger entry; null when the payment was refused. */
  entryId: number | null;
  /** False when this payment had been credited before, or was refused. */
  applied: boolean;
  balanceAfter: string;
  /** Set when the payment was recorded but not credited: its customer is not the account's. */
  refused?: 'customer_mismatch';
}

export const usageRecordedSignal = defineSignal<[UsageRecordedSignal]>('usageRecorded');
export const meteringStatusQuery = defineQuery<AccountMeteringState>('meteringStatus');

// --- settlement shards -------------------------------------------------------------

export interface SettlementShardState {
  shard: number;
  wakeups: number;
  eventsSignalled: number;
  /** Settled by this shard (all generations). */
  eventsSettled: number;
  costSettled: string;
  /** Passes that settled something, and sweeps run. */
  passes: number;
  sweeps: number;
  /** Accounts named by wake-ups and not settled yet (carried across continue-as-new). */
  pendingAccounts: string[];
  sweepPending: boolean;
  generation: number;
}

/** `settlement:{shard}`: ids and counts only. */
export interface SettlementShardInput {
  shard: number;
  /** Settle every account of the shard at least this often (a lost wake-up delays settlement, never loses it). */
  sweepMs?: number;
  /** Least time between two rounds of passes (batches frequent wake-ups; 0: none). */
  minIntervalMs?: number;
  /** Continue as new at this history length even if the SDK does not suggest it yet. */
  maxHistoryEvents?: number;
  state?: SettlementShardState;
}

export interface SettleShardInput {
  shard: number;
  /** The accounts to settle; absent: every account of the shard (a sweep). */
  accounts?: string[];
}

export const settlementWakeSignal = defineSignal<[UsageRecordedSignal]>('settlementWake');
export const settlementShardStatusQuery = defineQuery<SettlementShardState>('settlementShardStatus');

// --- invoicing -----------------------------------------------------------------

export interface InvoiceAccountInput {
  accountId: string;
  period: string; // YYYY-MM
  dryRun: boolean;
}

export type InvoiceAccountResult =
  | { status: 'invoiced' | 'existing'; invoiceId: string; number: string; total: string; currency: string; /** ISO; set on 'existing' */ issuedAt?: string }
  | { status: 'dry-run'; total: string; currency: string; lines: number }
  | { status: 'skipped'; reason: string };

/** One account of an invoice batch: its result, or the business reason it failed (retrying cannot help). */
export type InvoiceBatchItem = { accountId: string; result: InvoiceAccountResult } | { accountId: string; error: string };

export interface InvoiceBatchInput {
  accountIds: string[];
  period: string;
  dryRun: boolean;
  /** ISO start of the run: an invoice that already exists but was issued since is this run's own (a retried batch). */
  runStartedAt: string;
}

export interface InvoiceRunInput {
  period: string;
  dryRun: boolean;
  /** Only these accounts (staff re-runs); otherwise every account with billable activity. */
  accountIds?: string[];
  concurrency: number;
  pageSize: number;
  /** Carried across continue-as-new. */
  state?: InvoiceRunState;
}

export interface InvoiceRunFailure {
  accountId: string;
  reason: string;
}

export interface InvoiceRunState {
  period: string;
  dryRun: boolean;
  status: 'running' | 'completed' | 'completed_with_failures';
  /** Accounts seen so far (the run pages through them; the final total is known at the end). */
  total: number;
  done: number;
  failed: number;
  skipped: number;
  /** Invoices written by this run (a re-run finds existing ones and counts them as `existing`). */
  invoiced: number;
  existing: number;
  /** Sum of invoice totals per currency, decimal strings. */
  totals: Record<string, string>;
  /** The first failures with their reasons (bounded; `failed` has the count). */
  failures: InvoiceRunFailure[];
  /** Keyset cursor: the last account id listed. */
  cursor: string | null;
  listingDone: boolean;
  startedAt: string;
  finishedAt: string | null;
}

export const invoiceRunStatusQuery = defineQuery<InvoiceRunState>('invoiceRunStatus');

/**
 * `reconcile`: a day or a month (label), or, from the daily schedule, the UTC
 * day before the run started. `requestedBy` is a staff token id or
 * 'system:schedule': an id, never a name.
 */
export interface ReconcileInput {
  scope: 'day' | 'period' | 'previous-day';
  label?: string;
  requestedBy: string;
}

export interface ReconcileCheckCounts {
  found: number;
  repaired: number;
  needsAttention: number;
  new: number;
}

export interface ReconcileResult extends ReconcileCheckCounts {
  reportId: string;
  scope: 'day' | 'period';
  label: string;
  verdict: 'clean' | 'repaired' | 'needs_attention';
  checks: Record<string, ReconcileCheckCounts>;
}

export interface ReconcileState {
  reportId: string;
  label: string | null;
  status: 'running' | 'finished';
  /** The check running now, or null. */
  current: string | null;
  checks: Record<string, ReconcileCheckCounts>;
}

export const reconcileStatusQuery = defineQuery<ReconcileState>('reconcileStatus');

// --- data-subject requests ------------------------------------------------------

export interface DsrDeadlineView {
  dueDate: string;
  dueAt: string;
  extensionNoticeBy: string;
}

/** `dsr:{requestId}`: ids, codes and instants only; the subject's email stays in PostgreSQL. */
export interface DsrInput {
  requestId: string;
  type: 'access' | 'portability' | 'correction' | 'deletion' | 'restriction' | 'objection' | 'consent_withdrawal' | 'payload';
  jurisdiction: 'gdpr' | 'uk_gdpr' | 'ccpa' | 'unknown';
  receivedAt: string;
  timers: { verificationWaitMs: number; reminderBeforeMs: number[]; deadlineOverrideS?: number };
}

export interface DsrRefusalItem {
  item: string;
  ground: 'identity_not_verified' | 'security' | 'trade_secrets' | 'third_party_rights' | 'technical_feasibility' | 'law' | 'manifestly_unfounded_or_excessive';
}

export interface DsrState {
  requestId: string;
  type: DsrInput['type'];
  status: 'received' | 'verifying' | 'in_progress' | 'awaiting_approval' | 'completed' | 'partially_completed' | 'refused' | 'withdrawn' | 'failed';
  jurisdiction: DsrInput['jurisdiction'];
  /** Set with status `failed`: the reason code (never a value). */
  failureReason?: string;
  dueDate: string;
  dueAt: string;
  extended: boolean;
  overdue: boolean;
  verified: boolean;
  refusals: DsrRefusalItem[];
  remindersSent: number;
}

export interface DsrFulfilment {
  /** Rows affected or included, per category; never values. */
  counts: Record<string, number>;
  exportId: string | null;
  fieldsChanged: string[];
  /** Parts the fulfilment itself refused (a correction of an account by someone who is not its billing contact). */
  refused?: DsrRefusalItem[];
}

export const dsrStatusQuery = defineQuery<DsrState>('dsrStatus');
/** `method` is recorded by the caller (dsr_events); the workflow reads only that the signal came, so a new method replays like the old ones. */
export const dsrVerifiedSignal = defineSignal<[{ method: 'email_code' | 'manual' | 'console_sign_in'; actor: string }]>('dsrVerified');
export const dsrExtendSignal = defineSignal<[{ actor: string }]>('dsrExtend');
export const dsrRefuseSignal = defineSignal<[{ items: DsrRefusalItem[]; actor: string }]>('dsrRefuse');
export const dsrWithdrawSignal = defineSignal<[{ actor: string }]>('dsrWithdraw');
export const dsrApproveSignal = defineSignal<[{ actor: string }]>('dsrApprove');

// --- metadata expiry --------------------------------------------------------------

export interface MetadataExpiryInput {
  requestedBy: string;
  batchSize: number;
}

export interface RetentionCategoryCounts {
  category: string;
  expiredRows: number;
  expiredPartitions: number;
  keptHold: number;
  keptUnbilled: number;
  keptOther: number;
}

export interface MetadataExpiryResult {
  runId: string;
  categories: RetentionCategoryCounts[];
}

// --- webhooks (docs/webhooks.md) --------------------------------------------------

/** `webhook-delivery:{deliveryId}:{generation}`: ids only; the URL, secret and payload stay in PostgreSQL. */
export interface WebhookDeliveryInput {
  deliveryId: string;
  generation: number;
}

export interface WebhookDeliveryResult {
  status: 'succeeded' | 'failed' | 'stale';
  attempts: number;
  lastResponseCode: number | null;
}

export interface WebhookDispatcherInput {
  /** How long one dispatch activity polls before it returns (and the loop counts one round). */
  roundMs?: number;
  /** Rounds so far in this run; the workflow continues as new after enough of them. */
  rounds?: number;
}

// --- dunning (docs/collections.md)

/** `dunning:{invoiceId}`: the collection schedule of one finalized postpaid invoice. */
export interface DunningInput {
  invoiceId: string;
  accountId: string;
  /** The due date's 00:00 UTC, epoch milliseconds (dunning.rules.ts dunningAnchor). */
  anchorMs: number;
  /** The schedule, sorted (dunning.rules.ts validateDunningSteps); offsets in ms from the anchor. */
  steps: DunningStep[];
  /** While dunning is paused, how often the workflow looks again without a signal (ms). */
  pauseRecheckMs: number;
}

/** What one step did; `paused`: nothing, dunning is paused for the account (the step waits). */
export type DunningStepOutcome = 'sent' | 'suspended' | 'skipped_settled' | 'skipped_already_suspended' | 'paused';

export interface DunningResult {
  /** Why the workflow ended: the invoice no longer needs collecting, or the schedule ran to its end. */
  ended: 'settled' | 'completed';
  steps: { name: string; outcome: Exclude<DunningStepOutcome, 'paused'> }[];
}

export interface DunningState {
  settled: boolean;
  paused: boolean;
  /** The next step and when it is due (epoch ms); null when none is left. */
  next: { name: string; dueAtMs: number } | null;
  done: { name: string; outcome: Exclude<DunningStepOutcome, 'paused'> }[];
}

/** Something changed the invoice's collection (a payment, a credit note, a write-off, a void): the workflow looks again now. */
export const dunningSettledSignal = defineSignal<[{ cause: 'payment' | 'credit_note' | 'write_off' | 'void' | 'staff' }]>('dunningSettled');
/** Staff resumed dunning for the account: a waiting step looks again now. */
export const dunningResumedSignal = defineSignal('dunningResumed');
export const dunningStatusQuery = defineQuery<DunningState>('dunningStatus');

// --- subprocessorChange (issue 25 part 6; docs/processing-register.md#sub-processor-changes)

export interface SubprocessorChangeInput {
  changeId: string;
  /** When the change was announced and its notices started holding the recipient back (epoch ms). */
  announcedAtMs: number;
  /** The notice period it was announced with: SUBPROCESSOR_NOTICE_S in production, seconds in tests. */
  noticePeriodMs: number;
}

export interface SubprocessorChangeResult {
  /** Accounts told of the change (email and webhook). */
  notified: number;
  /** Notices still pending when the period ran, now in effect. */
  effective: number;
}

// --- policyPublished (issue 26; docs/customer-console.md#policy-changes)

export interface PolicyPublishedInput {
  /** The material privacy policy version whose owners' emails the workflow queues and sends. */
  version: string;
}

export interface PolicyPublishedResult {
  /** Account owners the run went through. */
  owners: number;
  /** Emails queued by this run (a re-run queues none already queued). */
  queued: number;
  /** Emails this run sent. */
  sent: number;
}
