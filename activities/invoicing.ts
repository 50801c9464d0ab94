import { ApplicationFailure, Context } from '@temporalio/activity';
import { InvoiceDataError } from '../src/invoicing/invoice.rules';
import { Money } from '../src/shared/money.rules';
import { TaxDataError } from '../src/invoicing/tax.rules';
import type { Clock } from '../src/clock';
import type { Config } from '../src/config';
import { invoiceAccountForPeriod, listBillableAccounts } from '../src/invoicing/invoicing.data';
import type { Db } from '../src/db/knex';
import { NotFoundError } from '../src/errors';
import type { InvoiceAccountInput, InvoiceAccountResult, InvoiceBatchInput, InvoiceBatchItem } from '../workflows/messages';

export function invoicingActivities({ db, clock, billing, invoicing }: { db: Db; clock: Clock; billing: Config['billing']; invoicing: Config['invoicing'] }) {
  const overdraftAllowance = new Money(billing.overdraftAllowance);
  return {
    async listBillableAccounts(input: { period: string; after: string | null; limit: number; accountIds?: string[] }): Promise<string[]> {
      return listBillableAccounts(db, input);
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
      const ctx = Context.current();
      const done: InvoiceBatchItem[] = [...((ctx.info.heartbeatDetails as { done?: InvoiceBatchItem[] } | undefined)?.done ?? [])];
      const seen = new Set(done.map((d) => d.accountId));
      const runStart = Date.parse(input.runStartedAt);
      // Also while one account's transaction runs: a slow database must not look like a dead worker
      // (a heartbeat timeout would start a second attempt beside the first).
      const beat = setInterval(() => ctx.heartbeat({ done }), 2_000);
      try {
        for (const accountId of input.accountIds) {
          if (seen.has(accountId)) continue;
          try {
            let result = await invoiceAccountForPeriod(db, { accountId, period: input.period, dryRun: input.dryRun, now: clock.now() }, { invoicing, overdraftAllowance, onProgress: () => ctx.heartbeat({ done }) });
            if (result.status === 'existing' && result.issuedAt && Date.parse(result.issuedAt) >= runStart) result = { ...result, status: 'invoiced' };
            done.push({ accountId, result });
          } catch (err) {
            if (err instanceof TaxDataError || err instanceof InvoiceDataError || err instanceof NotFoundError) done.push({ accountId, error: err.message });
            else throw err;
          }
          ctx.heartbeat({ done });
        }
        return done;
      } finally {
        clearInterval(beat);
      }
    },

    /** Bad tax or price data cannot be fixed by retrying: it fails this account, with the reason, at once. */
    async invoiceAccountActivity(input: InvoiceAccountInput): Promise<InvoiceAccountResult> {
      // A local attempt (how invoiceAccount runs it now) has no heartbeat; its workflow task timing out plays that part.
      const local = Context.current().info.isLocal;
      const heartbeat = () => {
        if (!local) Context.current().heartbeat();
      };
      const beat = setInterval(heartbeat, 5_000);
      try {
        return await invoiceAccountForPeriod(db, { ...input, now: clock.now() }, { invoicing, overdraftAllowance, onProgress: heartbeat });
      } catch (err) {
        if (err instanceof TaxDataError || err instanceof InvoiceDataError) throw ApplicationFailure.nonRetryable(err.message, 'InvoiceDataError');
        throw err;
      } finally {
        clearInterval(beat);
      }
    },
  };
}
