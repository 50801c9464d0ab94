import { createHash } from 'node:crypto';

/** TEMPORAL_TASK_QUEUE's default (src/config.ts). */
export const DEFAULT_TASK_QUEUE = 'mixroute';

/**
 * Workflow ids are business keys: starting the same process twice finds the
 * running (or finished) one instead of creating a duplicate. Every id MixRoute
 * builds is here, so two callers cannot spell one differently. Workflow code
 * does not import this module (it hashes with node:crypto); a workflow learns
 * its own id from workflowInfo().
 */
export const workflowIds = {
  healthProbe: (probeId: string) => `health-probe:${probeId}`,
  /** Retired: one per account; no new ones are started (see settlement). */
  metering: (accountId: string) => `metering:${accountId}`,
  /**
   * A settlement shard. Qualified by the task queue unless it is the default
   * one, so deployments (and test files) sharing a namespace never wake each
   * other's shards: a shard's workers own one database.
   */
  settlement: (shard: number, taskQueue: string) => (taskQueue === DEFAULT_TASK_QUEUE ? `settlement:${shard}` : `settlement:${taskQueue}:${shard}`),
  topUp: (paymentId: string) => `topup:${paymentId}`,
  /**
   * The invoice run of a period. A run limited to some accounts is keyed by
   * them (sorted, hashed); a dry run by its tag (the start time), so each dry
   * run is a run of its own.
   */
  invoiceRun: (period: string, opts: { dryRun?: boolean; accountIds?: string[]; runTag?: string } = {}) => {
    if (opts.dryRun) return `invoice-dry-run:${period}:${opts.runTag ?? 'x'}`;
    if (opts.accountIds?.length) {
      const h = createHash('sha256').update([...opts.accountIds].sort().join(',')).digest('hex').slice(0, 12);
      return `invoice-run:${period}:accounts-${h}`;
    }
    return `invoice-run:${period}`;
  },
  invoice: (accountId: string, period: string) => `invoice:${accountId}:${period}`,
  /** Reconciliation of one UTC day or one billing period, on demand. */
  reconcile: (scope: 'day' | 'period', label: string) => `reconcile:${scope}:${label}`,
  /** The daily reconciliation schedule's runs; Temporal appends the scheduled time. */
  reconcileDaily: () => 'reconcile:daily',
  /** The daily metadata-expiry schedule's runs; Temporal appends the scheduled time. */
  metadataExpiryDaily: () => 'metadata-expiry:daily',
  /** A metadata expiry staff start: one per minute, so a double click finds the run already going. */
  metadataExpiryOnDemand: (now: Date) => `metadata-expiry:manual-${now.toISOString().slice(0, 16)}`,
  dsr: (requestId: string) => `dsr:${requestId}`,
  /** The collection schedule of one finalized postpaid invoice (docs/collections.md). */
  dunning: (invoiceId: string) => `dunning:${invoiceId}`,
  /** A sub-processor change's notice period (docs/processing-register.md#sub-processor-changes). */
  subprocessorChange: (changeId: string) => `subprocessor-change:${changeId}`,
  /** The owners' emails of a material privacy policy version (docs/customer-console.md#policy-changes). */
  policyPublished: (version: string) => `policy-published:${version}`,
  /** One delivery's run; a manual redelivery is the next generation, a run of its own. */
  webhookDelivery: (deliveryId: string, generation: number) => `webhook-delivery:${deliveryId}:${generation}`,
  /** The one dispatcher per task queue (qualified like settlement shards), started by every worker. */
  webhookDispatcher: (taskQueue: string) => (taskQueue === DEFAULT_TASK_QUEUE ? 'webhook-dispatcher' : `webhook-dispatcher:${taskQueue}`),
} as const;
