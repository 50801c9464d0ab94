import { permanentFailure } from './errors';
import { withHeartbeat } from './heartbeat';
import type { Clock } from '../src/clock';
import type { Config } from '../src/config';
import type { RetentionService } from '../src/retention/retention.service';
import type { RetentionCategoryCounts } from '../workflows/messages';

export function retentionActivities({ retentionService, clock, retention }: { retentionService: RetentionService; clock: Clock; retention: Config['retention'] }) {
  return {
    async retentionOpenRun(input: { runId: string; workflowId: string; requestedBy: string }): Promise<string[]> {
      return retentionService.openRun(input);
    },

    async retentionRunCategory(input: { runId: string; category: string; batchSize: number }): Promise<RetentionCategoryCounts> {
      const policy = await retentionService.policy(input.category);
      if (!policy) throw permanentFailure(`no retention policy ${input.category}`, 'UnknownCategory');
      const startedAt = clock.now();
      return withHeartbeat({ everyMs: 10_000 }, async (beat) => {
        return retentionService.expireCategory(input.runId, policy, { now: startedAt, batchSize: input.batchSize, pauseFactor: retention.pauseFactor, onProgress: beat });
      });
    },

    async retentionCloseRun(input: { runId: string }): Promise<void> {
      await retentionService.closeRun(input.runId);
    },
  };
}
