import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import { workflowIds } from '../temporal/conventions';
import type { WebhookDispatcherInput } from '../../workflows/messages';

/**
 * Starts the task queue's webhook dispatcher unless it runs already. Every
 * worker calls it at start-up (like the schedules), so a deployment has one
 * dispatcher whichever worker came first; it runs until terminated.
 */
export async function ensureWebhookDispatcher(client: Client, taskQueue: string, input: WebhookDispatcherInput = {}): Promise<'started' | 'running'> {
  try {
    await client.workflow.start('webhookDispatcher', { taskQueue, workflowId: workflowIds.webhookDispatcher(taskQueue), args: [input] });
    return 'started';
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) return 'running';
    throw err;
  }
}
