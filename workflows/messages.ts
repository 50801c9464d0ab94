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
  /** How many times the workflow has continued as new. */
  generation: number;
}

export interface AccountMeteringInput {
  accountId: string;
  state?: AccountMeteringState;
  /** Continue as new at this history length even if the SDK does not suggest it yet. */
  maxHistoryEvents?: number;
}

export const usageRecordedSignal = defineSignal<[UsageRecordedSignal]>('usageRecorded');
export const meteringStatusQuery = defineQuery<AccountMeteringState>('meteringStatus');
