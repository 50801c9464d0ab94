import { Context } from '@temporalio/activity';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import type { Clock } from '../src/clock';
import { workflowIds } from '../src/temporal/conventions';
import type { AccountEventsService } from '../src/notifications/events.service';
import type { AttemptOutcome, WebhookDeliveryService } from '../src/webhooks/webhooks.service';
import type { WebhookDeliveryInput } from '../workflows/messages';

const DISPATCH_BATCH = 100;

/** Activities of `webhook-delivery:{id}:{generation}` and `webhook-dispatcher`: ids, codes and times in, the same out. */
export function webhookActivities({
  webhooks,
  events,
  processorEmails,
  clock,
  dispatchPollMs,
}: {
  webhooks: WebhookDeliveryService;
  /** Sends the account events' queued emails (src/notifications); the dispatcher's rounds drive it. */
  events?: Pick<AccountEventsService, 'sendQueuedEmails'>;
  /** Resends processor-mode emails a failed send left queued (src/privacy/processorMode.service.ts); the same rounds drive it. */
  processorEmails?: { sendQueued(): Promise<number> };
  clock: Clock;
  dispatchPollMs: number;
}) {
  return {
    async attemptWebhookDelivery(input: { deliveryId: string; generation: number; attempt: number; firstAttemptMs: number }): Promise<AttemptOutcome> {
      return webhooks.attempt(input);
    },

    async sendWebhookNotice(input: { noticeKey: string }): Promise<number> {
      return webhooks.sendNotice(input.noticeKey);
    },

    /**
     * One dispatcher round: for `roundMs`, starts the workflow of each delivery
     * that has none, polling every WEBHOOK_DISPATCH_POLL_MS while there is
     * nothing to start. Heartbeats each poll, so a cancelled or lost round ends
     * within the heartbeat timeout and the next one picks up the same rows.
     */
    async dispatchWebhookDeliveries(input: { roundMs: number }): Promise<number> {
      const ctx = Context.current();
      const { client } = ctx;
      const taskQueue = ctx.info.taskQueue;
      const start = async (d: { id: string; generation: number }) => {
        const args: [WebhookDeliveryInput] = [{ deliveryId: d.id, generation: d.generation }];
        try {
          // One run per generation, ever: a round repeated after a crash must not send a finished delivery again.
          await client.workflow.start('webhookDelivery', { taskQueue, workflowId: workflowIds.webhookDelivery(d.id, d.generation), args, workflowIdReusePolicy: 'REJECT_DUPLICATE' });
        } catch (err) {
          // Started before (a round that died before marking it): nothing more to do.
          if (!(err instanceof WorkflowExecutionAlreadyStartedError) && (err as Error)?.name !== 'WorkflowExecutionAlreadyStartedError') throw err;
        }
      };
      const until = clock.now().getTime() + input.roundMs;
      let started = 0;
      while (clock.now().getTime() < until) {
        const n = await webhooks.dispatch(start, DISPATCH_BATCH);
        started += n;
        // Event emails ride on the same rounds: a mail server that is down must not hold up webhooks.
        if (events) await events.sendQueuedEmails().catch((err: unknown) => ctx.log.warn('account event emails not sent; next round retries', { errType: (err as Error)?.name }));
        if (processorEmails) await processorEmails.sendQueued().catch((err: unknown) => ctx.log.warn('processor-mode emails not sent; next round retries', { errType: (err as Error)?.name }));
        ctx.heartbeat(started);
        if (n < DISPATCH_BATCH) await ctx.sleep(dispatchPollMs);
      }
      return started;
    },
  };
}
