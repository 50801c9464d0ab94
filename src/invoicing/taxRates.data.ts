import { Money, toAmountString } from '../shared/money.rules';
import type { TaxRate } from './tax.rules';
import type { DbOrTrx } from '../db/knex';

/** Tax rates by country and effective dates (`tax_rates`). */

/** Sets a country's rate from a date; a repeated (country, from) replaces its rate. */
export async function upsertTaxRate(db: DbOrTrx, rate: { country: string; rate: string; effectiveFrom: string; effectiveTo: string | null }): Promise<void> {
  await db('tax_rates')
    .insert({ country: rate.country, rate: rate.rate, effective_from: rate.effectiveFrom, effective_to: rate.effectiveTo })
    .onConflict(['country', 'effective_from'])
    .merge();
}

/** A page of rate rows by country and start, after the (country, from) key when given. */
export async function listTaxRatePage(db: DbOrTrx, page: { limit: number; after?: { country: string; from: string } }) {
  const q = db('tax_rates').orderBy(['country', 'effective_from']).limit(page.limit);
  if (page.after) q.whereRaw('(country, effective_from) > (?, ?::date)', [page.after.country, page.after.from]);
  return q;
}

/** Every rate, as the tax rules take them. */
export async function allTaxRates(db: DbOrTrx): Promise<TaxRate[]> {
  return (await db('tax_rates').select('*')).map((r) => ({
    country: r.country,
    rate: toAmountString(new Money(r.rate)),
    effectiveFrom: r.effective_from,
    effectiveTo: r.effective_to ?? null,
  }));
}
