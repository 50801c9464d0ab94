import { proxyActivities, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { MetadataExpiryInput, MetadataExpiryResult } from './messages';

const { retentionOpenRun, retentionCloseRun } = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds' },
});

// A category works in bounded batches and heartbeats after each: a killed
// worker is noticed within the heartbeat timeout and the retry goes on from
// what is left (expiry is idempotent: what is gone is not found again).
const { retentionRunCategory } = proxyActivities<Activities>({
  startToCloseTimeout: '2 hours',
  heartbeatTimeout: '1 minute',
  retry: { initialInterval: '5 seconds', maximumInterval: '2 minutes', maximumAttempts: 20 },
});

/**
 * `metadataExpiry`: daily from the `metadata-expiry-daily` schedule, or on
 * demand. Expires each category of retention_policies in turn, records what
 * it did in retention_runs (the run id is this workflow's first run id), and
 * carries category names and counts only.
 */
export async function metadataExpiry(input: MetadataExpiryInput): Promise<MetadataExpiryResult> {
  const runId = workflowInfo().firstExecutionRunId;
  upsertSearchAttributes({ MixrouteKind: ['metadata-expiry'], ProcessStatus: ['running'] });
  const categories = await retentionOpenRun({ runId, workflowId: workflowInfo().workflowId, requestedBy: input.requestedBy });
  const result: MetadataExpiryResult = { runId, categories: [] };
  for (const category of categories) {
    result.categories.push(await retentionRunCategory({ runId, category, batchSize: input.batchSize }));
  }
  await retentionCloseRun({ runId });
  upsertSearchAttributes({ ProcessStatus: ['finished'] });
  return result;
}
