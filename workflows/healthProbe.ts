import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { HealthProbeInput, HealthProbeResult } from './messages';

const { checkDatabase } = proxyActivities<Activities>({
  startToCloseTimeout: '10 seconds',
  retry: { maximumAttempts: 3 },
});

/**
 * End-to-end probe of the durable side: a worker picked the task up and one of
 * its activities reached PostgreSQL. Used by `mixroute doctor`.
 */
export async function healthProbe(input: HealthProbeInput): Promise<HealthProbeResult> {
  const db = await checkDatabase();
  return { probeId: input.probeId, ...db };
}
