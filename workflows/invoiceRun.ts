import {
  allHandlersFinished,
  condition,
  continueAsNew,
  executeChild,
  ParentClosePolicy,
  proxyActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
  ApplicationFailure,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import { Money, toAmountString } from '../src/billing/money';
import { invoiceAccount } from './invoiceAccount';
import { invoiceRunStatusQuery, type InvoiceRunInput, type InvoiceRunState } from './messages';

const { listBillableAccounts } = proxyActivities<Activities>({
  startToCloseTimeout: '2 minutes',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds' },
});

/** Failures kept with their reason in the state (the count is always exact). */
const MAX_FAILURES_KEPT = 500;

/**
 * `invoice-run:{period}`: invoices every account with billable activity in
 * the period. It pages through accounts (keyset on account id), runs one
 * child `invoice:{accountId}:{period}` per account with bounded concurrency,
 * and continues as new after every page, so its history stays small for any
 * number of accounts. Progress is a query and search attributes.
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

  // Bounded concurrency: at most `concurrency` children at a time.
  let next = 0;
  let running = 0;
  const startNext = async (): Promise<void> => {
    const accountId = page[next++]!;
    running++;
    try {
      const childId = input.dryRun
        ? `invoice-dry-run:${accountId}:${input.period}:${workflowInfo().firstExecutionRunId}`
        : `invoice:${accountId}:${input.period}`;
      const r = await executeChild(invoiceAccount, {
        workflowId: childId,
        args: [{ accountId, period: input.period, dryRun: input.dryRun }],
        parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
        workflowIdReusePolicy: 'ALLOW_DUPLICATE',
      });
      if (r.status === 'skipped') state.skipped++;
      else {
        if (r.status === 'invoiced') state.invoiced++;
        if (r.status === 'existing') state.existing++;
        state.totals[r.currency] = toAmountString(new Money(state.totals[r.currency] ?? '0').plus(r.total));
      }
      state.done++;
    } catch (err) {
      state.failed++;
      if (state.failures.length < MAX_FAILURES_KEPT) state.failures.push({ accountId, reason: failureReason(err) });
    } finally {
      running--;
    }
  };
  const inFlight: Promise<void>[] = [];
  while (next < page.length) {
    await condition(() => running < input.concurrency);
    inFlight.push(startNext());
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
  // A child failure wraps the activity failure, which wraps the business reason.
  let e: unknown = err;
  for (let i = 0; i < 4 && e && typeof e === 'object' && 'cause' in e && (e as { cause?: unknown }).cause; i++) e = (e as { cause: unknown }).cause;
  if (e instanceof ApplicationFailure) return e.message;
  return e instanceof Error ? e.message : 'failed';
}
