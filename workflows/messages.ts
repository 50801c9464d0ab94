import { defineQuery, defineSignal } from '@temporalio/workflow';

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

/** What the gateway's metering batcher tells an account's metering workflow after a batch reached usage_events. */
export interface UsageRecordedSignal {
  events: number;
  cost: string;
  /** The latest occurred_at in the batch (ISO): a watermark, not a cursor; the database is the truth. */
  lastOccurredAt: string;
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
  /** Least time between two settlements (batches frequent signals). */
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
}

export interface TopUpResult {
  entryId: number;
  /** False when this payment had been credited before. */
  applied: boolean;
  balanceAfter: string;
}

export const usageRecordedSignal = defineSignal<[UsageRecordedSignal]>('usageRecorded');
export const meteringStatusQuery = defineQuery<AccountMeteringState>('meteringStatus');
