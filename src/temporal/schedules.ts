import { ScheduleAlreadyRunning, ScheduleNotFoundError, ScheduleOverlapPolicy, type Client, type ScheduleDescription, type ScheduleOptions } from '@temporalio/client';
import type { Config } from '../config';
import type { MetadataExpiryInput, ReconcileInput } from '../../workflows/messages';
import { workflowIds } from './conventions';

/**
 * Temporal Schedules owned by MixRoute. Registration is idempotent: the
 * schedule id is the business key, an existing schedule is updated to the
 * declared spec, so starting the system twice never creates a second one.
 *
 * Registered by `mixroute temporal setup` (which `mixroute dev` runs), and outside
 * production by every worker at start-up (src/temporal/setup.ts).
 */
export interface ScheduleDefinition {
  scheduleId: string;
  workflowType: string;
  workflowId: string;
  args: unknown[];
  /** Cron-like calendar spec in UTC, e.g. { hour: 2, minute: 15 }. */
  at: { hour: number; minute: number };
  note: string;
}

export function productionSchedules(config: Pick<Config, 'reconcile' | 'retention'>): ScheduleDefinition[] {
  const reconcileDaily: ReconcileInput = { scope: 'previous-day', requestedBy: 'system:schedule' };
  const expiryDaily: MetadataExpiryInput = { requestedBy: 'system:schedule', batchSize: config.retention.batchSize };
  return [
    {
      scheduleId: 'reconcile-daily',
      workflowType: 'reconcile',
      // Temporal appends the scheduled time: reconcile:daily-2026-11-26T02:30:00Z.
      workflowId: workflowIds.reconcileDaily(),
      args: [reconcileDaily],
      at: config.reconcile.dailyAt,
      note: 'Reconciles the previous UTC day: payments, usage, ledger, balances, invoices, provider statements',
    },
    {
      scheduleId: 'metadata-expiry-daily',
      workflowType: 'metadataExpiry',
      workflowId: workflowIds.metadataExpiryDaily(),
      args: [expiryDaily],
      at: config.retention.dailyAt,
      note: 'Expires data past its retention period (retention_policies), sparing legal holds and unbilled usage',
    },
  ];
}

function toScheduleOptions(def: ScheduleDefinition, taskQueue: string): ScheduleOptions {
  return {
    scheduleId: def.scheduleId,
    spec: { calendars: [{ hour: def.at.hour, minute: def.at.minute }] },
    action: { type: 'startWorkflow', workflowType: def.workflowType, workflowId: def.workflowId, args: def.args, taskQueue },
    // A run that is still going when the next one is due: skip, never stack runs up.
    policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: CATCHUP_WINDOW_MS },
    memo: { note: def.note },
  };
}

export interface EnsureSchedulesResult {
  created: string[];
  updated: string[];
}

/** One day, as the server reports a catch-up window (milliseconds). */
const CATCHUP_WINDOW_MS = 86_400_000;

/**
 * Whether a described schedule already is what we declare: the one calendar entry,
 * the workflow it starts (type, id, task queue, arguments) and the policies we set.
 * What we do not declare (paused state, notes, backfills) is the operator's and not
 * compared, so an operator's pause survives `temporal setup`.
 */
export function scheduleIsCurrent(described: ScheduleDescription, def: ScheduleDefinition, taskQueue: string): boolean {
  const one = (n: number) => JSON.stringify([{ start: n, end: n, step: 1 }]);
  const calendars = described.spec.calendars ?? [];
  const cal = calendars[0];
  const action = described.action;
  return (
    calendars.length === 1 &&
    (described.spec.intervals ?? []).length === 0 &&
    JSON.stringify(cal?.hour) === one(def.at.hour) &&
    JSON.stringify(cal?.minute) === one(def.at.minute) &&
    action.type === 'startWorkflow' &&
    action.workflowType === def.workflowType &&
    action.workflowId === def.workflowId &&
    action.taskQueue === taskQueue &&
    JSON.stringify(action.args ?? []) === JSON.stringify(def.args) &&
    described.policies.overlap === ScheduleOverlapPolicy.SKIP &&
    described.policies.catchupWindow === CATCHUP_WINDOW_MS
  );
}

export type ScheduleState = 'missing' | 'outdated' | 'current';

/** What `temporal setup` would do to each schedule, without changing anything. */
export async function scheduleStates(client: Client, definitions: readonly ScheduleDefinition[], taskQueue: string): Promise<Record<string, ScheduleState>> {
  const states: Record<string, ScheduleState> = {};
  for (const def of definitions) {
    try {
      const described = await client.schedule.getHandle(def.scheduleId).describe();
      states[def.scheduleId] = scheduleIsCurrent(described, def, taskQueue) ? 'current' : 'outdated';
    } catch (err) {
      if (!(err instanceof ScheduleNotFoundError)) throw err;
      states[def.scheduleId] = 'missing';
    }
  }
  return states;
}

export async function ensureSchedules(
  client: Client,
  definitions: readonly ScheduleDefinition[],
  taskQueue: string,
): Promise<EnsureSchedulesResult> {
  const result: EnsureSchedulesResult = { created: [], updated: [] };
  for (const def of definitions) {
    const options = toScheduleOptions(def, taskQueue);
    const handle = client.schedule.getHandle(def.scheduleId);
    try {
      // Already as declared: leave it alone, so a second run changes nothing.
      if (scheduleIsCurrent(await handle.describe(), def, taskQueue)) continue;
    } catch (err) {
      if (!(err instanceof ScheduleNotFoundError)) throw err;
      try {
        await client.schedule.create(options);
        result.created.push(def.scheduleId);
        continue;
      } catch (createErr) {
        // Another instance created it between describe and create: fall through to update.
        if (!(createErr instanceof ScheduleAlreadyRunning)) throw createErr;
      }
    }
    await handle.update((previous) => ({
      ...previous,
      spec: options.spec,
      action: { ...options.action, workflowId: def.workflowId },
      policies: { ...previous.policies, ...options.policies },
    }));
    result.updated.push(def.scheduleId);
  }
  return result;
}
