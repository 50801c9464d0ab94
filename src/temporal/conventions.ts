/** TEMPORAL_TASK_QUEUE's default (src/config.ts). */
export const DEFAULT_TASK_QUEUE = 'mixroute';

/**
 * Workflow ids are business keys: starting the same process twice finds the
 * running (or finished) one instead of creating a duplicate.
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
  invoiceRun: (period: string) => `invoice-run:${period}`,
  invoice: (accountId: string, period: string) => `invoice:${accountId}:${period}`,
  dsr: (requestId: string) => `dsr:${requestId}`,
} as const;
