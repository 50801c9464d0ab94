import { Context } from '@temporalio/activity';
import { failingPermanentlyOn, type FailureTypes } from './errors';
import { lastHeartbeatDetails, withHeartbeat } from './heartbeat';
import { InvoiceDataError } from '../src/invoicing/invoice.rules';
import { TaxDataError } from '../src/invoicing/tax.rules';
import type { InvoicingService } from '../src/invoicing/invoicing.service';
import { NotFoundError } from '../src/errors';
import type { InvoiceAccountInput, InvoiceAccountResult, InvoiceBatchInput, InvoiceBatchItem } from '../workflows/messages';

/** Bad tax or price data: retrying cannot fix it. */
const INVOICE_DATA_ERRORS: FailureTypes = [
  [TaxDataError, 'InvoiceDataError'],
  [InvoiceDataError, 'InvoiceDataError'],
];

/**
 * `startDunning`: starts an invoice's dunning workflow (activities/dunning.ts
 * dunningStarter); called after each invoice finalized here, before the result
 * is reported, so a failed start is retried with the attempt.
 */
export function invoicingActivities({ invoicing, startDunning }: { invoicing: InvoicingService; startDunning?: (invoiceId: string) => Promise<void> }) {
  return {
    async listBillableAccounts(input: { period: string; after: string | null; limit: number; accountIds?: string[] }): Promise<string[]> {
      return invoicing.listBillableAccounts(input);
    },

    /**
     * Invoices a batch of accounts one after another (the run's fan-out: one
     * activity per batch instead of a workflow per account). A business failure
     * (bad tax or price data) is that account's result, with its reason; any
     * other error fails the attempt, and the retry resumes after the accounts
     * the last heartbeat reported done. An account invoiced after that heartbeat
     * comes back as existing; issued since the run started, it is this run's own.
     */
    async invoiceAccountBatch(input: InvoiceBatchInput): Promise<InvoiceBatchItem[]> {
      const done: InvoiceBatchItem[] = [...(lastHeartbeatDetails<{ done?: InvoiceBatchItem[] }>()?.done ?? [])];
      const seen = new Set(done.map((d) => d.accountId));
      const runStart = Date.parse(input.runStartedAt);
      // Also while one account's transaction runs: a slow database must not look like a dead worker
      // (a heartbeat timeout would start a second attempt beside the first).
      return withHeartbeat({ everyMs: 2_000, details: () => ({ done }) }, async (beat) => {
        for (const accountId of input.accountIds) {
          if (seen.has(accountId)) continue;
          try {
            let result = await invoicing.invoiceAccount({ accountId, period: input.period, dryRun: input.dryRun }, beat);
            if (result.status === 'existing' && result.issuedAt && Date.parse(result.issuedAt) >= runStart) result = { ...result, status: 'invoiced' };
            // Before it is reported done: a retried batch invoices it again ('existing', issued since the run started) and starts it then.
            if (result.status === 'invoiced' && startDunning) await startDunning(result.invoiceId);
            done.push({ accountId, result });
          } catch (err) {
            if (err instanceof TaxDataError || err instanceof InvoiceDataError || err instanceof NotFoundError) done.push({ accountId, error: err.message });
            else throw err;
          }
          beat();
        }
        return done;
      });
    },

    /** Bad tax or price data cannot be fixed by retrying: it fails this account, with the reason, at once. */
    async invoiceAccountActivity(input: InvoiceAccountInput): Promise<InvoiceAccountResult> {
      // invoiceAccount runs it as a local activity, which has no heartbeat (withHeartbeat sends none).
      const result = await withHeartbeat({ everyMs: 5_000 }, (beat) =>
        failingPermanentlyOn(INVOICE_DATA_ERRORS, () => invoicing.invoiceAccount(input, beat)),
      );
      // A retry after a failed start finds the invoice 'existing': start it then too (idempotent by workflow id).
      const retried = result.status === 'existing' && Context.current().info.attempt > 1;
      if ((result.status === 'invoiced' || retried) && startDunning) await startDunning(result.invoiceId);
      return result;
    },
  };
}
