import {
  allHandlersFinished,
  condition,
  continueAsNew,
  proxyActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
  ApplicationFailure,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import { Money, toAmountString } from '../src/shared/money.rules';
import { invoiceRunStatusQuery, type InvoiceAccountResult, type InvoiceRunInput, type InvoiceRunState } from './messages';

const { listBillableAccounts } = proxyActivities<Activities>({
  startToCloseTimeout: '2 minutes',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds' },
});

const { invoiceAccountBatch } = proxyActivities<Activities>({
  startToCloseTimeout: '30 minutes',
  // Heartbeats come after every account (seconds at most), so a killed worker's batch resumes within this.
  heartbeatTimeout: '10 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '1 minute', maximumAttempts: 10 },
});

/** Accounts per batch activity, at most: a batch is invoiced one account after another. */
const MAX_BATCH = 50;

/** Failures kept with their reason in the state (the count is always exact). */
const MAX_FAILURES_KEPT = 500;

/**
 * `invoice-run:{period}`: invoices every account with billable activity in
 * the period. It pages through accounts (keyset on account id), invoices each
 * page in batches (one `invoiceAccountBatch` activity per batch, at most
 * `concurrency` at a time), and continues as new after every page, so its
 * history stays small for any number of accounts. Progress is a query and
 * search attributes.
 */
export async function invoiceRun(input: InvoiceRunInput): Promise<InvoiceRunState> {
  const state: InvoiceRunState = input.state ?? {
    period: input.period,
    dryRun: input.dryRun,
    status: 'running',
    total: 0,
    done: 0,
    failed: 0,
    skipped: 0,
    invoiced: 0,
    existing: 0,
    totals: {},
    failures: [],
    cursor: null,
    listingDone: false,
    startedAt: new Date(workflowInfo().startTime).toISOString(),
    finishedAt: null,
  };
  setHandler(invoiceRunStatusQuery, () => state);
  if (!input.state) {
    upsertSearchAttributes({ MixrouteKind: ['invoice-run'], BillingPeriod: [input.period], ProcessStatus: ['running'] });
  }

  const page = await listBillableAccounts({
    period: input.period,
    after: state.cursor,
    limit: input.pageSize,
    accountIds: input.accountIds,
  });
  state.total += page.length;
  state.cursor = page.at(-1) ?? state.cursor;
  state.listingDone = page.length < input.pageSize;

  const record = (r: InvoiceAccountResult) => {
    if (r.status === 'skipped') state.skipped++;
    else {
      if (r.status === 'invoiced') state.invoiced++;
      if (r.status === 'existing') state.existing++;
      state.totals[r.currency] = toAmountString(new Money(state.totals[r.currency] ?? '0').plus(r.total));
    }
    state.done++;
  };
  const fail = (accountId: string, reason: string) => {
    state.failed++;
    if (state.failures.length < MAX_FAILURES_KEPT) state.failures.push({ accountId, reason });
  };

  // The page in batches, at most `concurrency` batches (accounts being invoiced) at a time:
  // one activity per batch, so the Temporal work per account is a fraction of a task.
  const size = Math.min(MAX_BATCH, Math.max(1, Math.ceil(page.length / input.concurrency)));
  const batches: string[][] = [];
  for (let i = 0; i < page.length; i += size) batches.push(page.slice(i, i + size));
  let running = 0;
  const inFlight: Promise<void>[] = [];
  for (const batch of batches) {
    await condition(() => running < input.concurrency);
    running++;
    inFlight.push(
      invoiceAccountBatch({ accountIds: batch, period: input.period, dryRun: input.dryRun, runStartedAt: state.startedAt })
        .then((items) => {
          for (const item of items) {
            if ('error' in item) fail(item.accountId, item.error);
            else record(item.result);
          }
        })
        .catch((err: unknown) => {
          for (const accountId of batch) fail(accountId, failureReason(err));
        })
        .finally(() => {
          running--;
        }),
    );
  }
  await Promise.all(inFlight);

  if (!state.listingDone) {
    await condition(allHandlersFinished);
    await continueAsNew<typeof invoiceRun>({ ...input, state });
  }
  state.status = state.failed > 0 ? 'completed_with_failures' : 'completed';
  state.finishedAt = new Date().toISOString();
  upsertSearchAttributes({ ProcessStatus: [state.status] });
  return state;
}

function failureReason(err: unknown): string {
  // An activity failure wraps the business reason.
  let e: unknown = err;
  for (let i = 0; i < 4 && e && typeof e === 'object' && 'cause' in e && (e as { cause?: unknown }).cause; i++) e = (e as { cause: unknown }).cause;
  if (e instanceof ApplicationFailure) return e.message;
  return e instanceof Error ? e.message : 'failed';
}
