import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, type Client } from '@temporalio/client';
import { z } from 'zod';
import { billingPeriod } from './invoice.rules';
import type { Clock } from '../clock';
import type { Config } from '../config';
import { ConflictError, NotFoundError, ValidationError } from '../errors';
import { validate } from '../shared/validate';
import { workflowIds } from '../temporal/conventions';
import { invoiceRunStatusQuery, type InvoiceRunState } from '../../workflows/messages';

/**
 * Starting and following invoice runs (CLI and admin API). The run for a
 * period is the workflow `invoice-run:{period}`: starting it while it runs,
 * or after it finished, returns that run; `rerun` starts it again after it
 * finished (after fixing an account's data: accounts already invoiced are
 * found as existing, only the rest are invoiced). A run limited to some
 * accounts, and a dry run, get their own ids.
 */
export const startRunInput = z.strictObject({
  period: z.string().regex(/^\d{4}-(0[1-9]|1[0-2])$/, 'period must be YYYY-MM'),
  accountIds: z.array(z.uuid({ error: 'accountIds must be account ids (UUID)' })).max(1_000).optional(),
  dryRun: z.boolean().default(false),
  force: z.boolean().default(false),
  rerun: z.boolean().default(false),
});
export const periodInput = z.strictObject({ period: z.string().regex(/^\d{4}-(0[1-9]|1[0-2])$/, 'period must be YYYY-MM') });

export interface RunView {
  workflowId: string;
  runId: string;
  started: boolean;
  state: InvoiceRunState | null;
}

export function invoiceRuns(deps: { client: Client; taskQueue: string; config: Pick<Config, 'invoicing'>; clock: Clock }) {
  const { client, taskQueue, config, clock } = deps;

  async function describe(workflowId: string): Promise<RunView> {
    const handle = client.workflow.getHandle(workflowId);
    const d = await handle.describe();
    let state: InvoiceRunState | null = null;
    if (d.status.name === 'COMPLETED') state = (await handle.result()) as InvoiceRunState;
    else {
      try {
        state = await handle.query(invoiceRunStatusQuery);
      } catch {
        state = null; // no worker to answer yet
      }
    }
    return { workflowId, runId: d.runId, started: false, state };
  }

  return {
    async start(raw: unknown): Promise<RunView> {
      const input = validate(startRunInput, raw);
      const { end } = billingPeriod(input.period);
      const openAt = new Date(new Date(end).getTime() + config.invoicing.graceHours * 3_600_000);
      if (!input.force && clock.now() < openAt) {
        throw new ConflictError(
          `period ${input.period} can be invoiced from ${openAt.toISOString()} (its end plus ${config.invoicing.graceHours} h for late events); use force to start now`,
        );
      }
      const workflowId = workflowIds.invoiceRun(input.period, { dryRun: input.dryRun, accountIds: input.accountIds, runTag: String(clock.now().getTime()) });
      try {
        const handle = await client.workflow.start('invoiceRun', {
          taskQueue,
          workflowId,
          args: [
            {
              period: input.period,
              dryRun: input.dryRun,
              ...(input.accountIds?.length ? { accountIds: input.accountIds } : {}),
              concurrency: config.invoicing.runConcurrency,
              pageSize: config.invoicing.runPageSize,
            },
          ],
          // A finished run is found, not repeated, unless a re-run is asked for.
          workflowIdReusePolicy: input.rerun ? 'ALLOW_DUPLICATE' : 'REJECT_DUPLICATE',
        });
        return { workflowId, runId: handle.firstExecutionRunId, started: true, state: null };
      } catch (err) {
        if (err instanceof WorkflowExecutionAlreadyStartedError) return describe(workflowId);
        throw err;
      }
    },

    async status(raw: unknown): Promise<RunView> {
      const { period } = validate(periodInput, raw);
      try {
        return await describe(workflowIds.invoiceRun(period));
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) throw new NotFoundError(`no invoice run for ${period} yet`);
        throw err;
      }
    },
  };
}

export { ValidationError };
