import { continueAsNew, proxyActivities, sleep, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { WebhookDeliveryInput, WebhookDeliveryResult, WebhookDispatcherInput } from './messages';

/**
 * An attempt's own failures (the database away, the worker restarting) are
 * retried by Temporal; a receiver's failures are not errors but outcomes,
 * whose next attempt the activity has already decided and recorded
 * (webhooks.rules.ts: doubling waits within the three-day window).
 */
const { attemptWebhookDelivery, sendWebhookNotice } = proxyActivities<Activities>({
  startToCloseTimeout: '2 minutes',
  retry: { initialInterval: '1 second', maximumInterval: '1 minute' },
});

const { dispatchWebhookDeliveries } = proxyActivities<Activities>({
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds' },
});

/**
 * `webhook-delivery:{deliveryId}:{generation}`: POSTs one event to one
 * endpoint, signed, until the receiver answers 2xx, the retry window closes,
 * the endpoint is disabled, or a redelivery supersedes this run. Carries ids
 * and times only.
 */
export async function webhookDelivery(input: WebhookDeliveryInput): Promise<WebhookDeliveryResult> {
  const firstAttemptMs = Date.now();
  let lastResponseCode: number | null = null;
  for (let attempt = 1; ; attempt++) {
    const r = await attemptWebhookDelivery({ deliveryId: input.deliveryId, generation: input.generation, attempt, firstAttemptMs });
    if (r.outcome === 'stale') return { status: 'stale', attempts: attempt - 1, lastResponseCode };
    lastResponseCode = r.status;
    if (r.outcome === 'succeeded') return { status: 'succeeded', attempts: attempt, lastResponseCode };
    if (r.outcome === 'failed') {
      if (r.noticeKey) await sendWebhookNotice({ noticeKey: r.noticeKey });
      return { status: 'failed', attempts: attempt, lastResponseCode };
    }
    await sleep(Math.max(0, r.nextAttemptAtMs - Date.now()));
  }
}

const ROUNDS_PER_RUN = 500;

/**
 * `webhook-dispatcher[:{taskQueue}]`: starts a `webhookDelivery` for every
 * delivery row that has none yet (new events' deliveries, redeliveries). Each
 * round is one activity that polls the partial index of unstarted deliveries
 * for a while, so the history grows by a few events a minute, not per poll.
 */
export async function webhookDispatcher(input: WebhookDispatcherInput = {}): Promise<void> {
  const roundMs = input.roundMs ?? 60_000;
  for (let rounds = input.rounds ?? 0; ; rounds++) {
    if (rounds >= ROUNDS_PER_RUN || workflowInfo().continueAsNewSuggested) {
      await continueAsNew<typeof webhookDispatcher>({ roundMs, rounds: 0 });
    }
    await dispatchWebhookDeliveries({ roundMs });
  }
}
