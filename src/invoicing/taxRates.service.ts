import { z } from 'zod';
import type { Db } from '../db/knex';
import { listTaxRatePage, upsertTaxRate } from './taxRates.data';
import { pageLimit } from '../staff/schemas';
import { validate } from '../shared/validate';

export const setTaxRateInput = z.strictObject({
  country: z.string().trim().toUpperCase().regex(/^[A-Z]{2}$/, 'country must be an ISO 3166-1 alpha-2 code'),
  rate: z.string().regex(/^0(\.\d{1,6})?$/, 'rate must be a decimal fraction below 1, such as "0.19"'),
  effectiveFrom: z.iso.date({ error: 'effectiveFrom must be a date such as 2026-01-01' }),
  effectiveTo: z.iso.date({ error: 'effectiveTo must be a date such as 2026-12-31' }).optional(),
});

export const listTaxRatesInput = z.strictObject({
  limit: pageLimit(),
  after: z.string().regex(/^[A-Z]{2}:\d{4}-\d{2}-\d{2}$/, 'after must be the last item\'s COUNTRY:effectiveFrom, such as DE:2026-01-01').optional(),
});

/** Tax rates by country and effective dates; a repeated (country, from) replaces its rate. */
export function taxRates(db: Db) {
  return {
    async set(raw: unknown) {
      const i = validate(setTaxRateInput, raw);
      await upsertTaxRate(db, { country: i.country, rate: i.rate, effectiveFrom: i.effectiveFrom, effectiveTo: i.effectiveTo ?? null });
      return { country: i.country, rate: i.rate, effectiveFrom: i.effectiveFrom, effectiveTo: i.effectiveTo ?? null };
    },
    /** A page of rates by country and start; `after` is the last item's "COUNTRY:effectiveFrom". */
    async list(raw: unknown = {}) {
      const page = validate(listTaxRatesInput, raw ?? {});
      let after: { country: string; from: string } | undefined;
      if (page.after) {
        const [country, from] = page.after.split(':') as [string, string];
        after = { country, from };
      }
      const rows = await listTaxRatePage(db, { limit: page.limit, after });
      return rows.map((r) => ({
        country: r.country,
        rate: String(Number(r.rate)),
        effectiveFrom: r.effective_from as string,
        effectiveTo: (r.effective_to as string | null) ?? null,
      }));
    },
  };
}
