import { randomUUID } from 'node:crypto';
import { systemClock } from '../../src/clock';
import type { Config } from '../../src/config';
import type { Db } from '../../src/db/knex';
import { accountsService } from '../../src/accounts/accounts.service';
import { invoiceAccountForPeriod } from '../../src/invoicing/invoicing.service';
import { Money } from '../../src/shared/money.rules';
import { insertUsageEvents } from './usageEvents';

/**
 * Postpaid accounts with one finalized invoice each, made without Temporal
 * (invoiceAccountForPeriod, as the invoice run's activity does). A billion
 * input tokens at 0.10/Mtok in Germany (19 % VAT): 100.00 + 19.00 = 119.00.
 */
export async function postpaidInvoiceFactory(db: Db, config: Config) {
  const ops = accountsService({ db, clock: systemClock });
  const provider = `col-${randomUUID().slice(0, 6)}`;
  await ops.addProvider({ name: provider, baseUrl: 'http://127.0.0.1:9/v1' });
  const model = `col-model-${randomUUID().slice(0, 6)}`;
  const priceId = (await ops.addModel({ name: model, provider, upstreamModel: 'u', inputPerMtok: '0.1', outputPerMtok: '0.4', effectiveFrom: '2020-01-01T00:00:00Z' })).price!.id as string;
  await db.raw(`INSERT INTO tax_rates (country, rate, effective_from) VALUES ('DE', 0.19, '2020-01-01') ON CONFLICT DO NOTHING`);

  return async function postpaidInvoice(name = 'Collections Co'): Promise<{ accountId: string; invoiceId: string; number: string; dueDate: string }> {
    const a = await ops.createAccount({ name: `${name} ${randomUUID().slice(0, 6)}`, country: 'DE', plan: 'postpaid', creditLimit: '1000', billingEmail: 'ap@example.com' });
    await insertUsageEvents(db, [{ account_id: a.id, occurred_at: '2026-10-15T10:00:00Z', model, provider, price_id: priceId, input_tokens: 1_000_000_000, output_tokens: 0, cost: '100' }]);
    const r = await invoiceAccountForPeriod(db, { accountId: a.id, period: '2026-10', dryRun: false, now: new Date() }, { invoicing: config.invoicing, overdraftAllowance: new Money(0) });
    if (r.status !== 'invoiced') throw new Error(`expected an invoice, got ${JSON.stringify(r)}`);
    const inv = await db('invoices').where({ id: r.invoiceId }).first();
    return { accountId: a.id as string, invoiceId: r.invoiceId, number: r.number, dueDate: inv.due_date as string };
  };
}
