import { ApplicationFailure, Context } from '@temporalio/activity';
import { InvoiceDataError } from '../src/billing/invoice';
import { Money } from '../src/billing/money';
import { TaxDataError } from '../src/billing/tax';
import type { Clock } from '../src/clock';
import type { Config } from '../src/config';
import { invoiceAccountForPeriod, listBillableAccounts } from '../src/db/invoices';
import type { Db } from '../src/db/knex';
import type { InvoiceAccountInput, InvoiceAccountResult } from '../workflows/messages';

export function invoicingActivities({ db, clock, billing, invoicing }: { db: Db; clock: Clock; billing: Config['billing']; invoicing: Config['invoicing'] }) {
  const overdraftAllowance = new Money(billing.overdraftAllowance);
  return {
    async listBillableAccounts(input: { period: string; after: string | null; limit: number; accountIds?: string[] }): Promise<string[]> {
      return listBillableAccounts(db, input);
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
