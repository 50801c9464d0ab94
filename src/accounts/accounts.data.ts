import type { DbOrTrx } from '../db/knex';

export interface AccountRow {
  id: string;
  name: string;
  country: string | null;
  vat_id: string | null;
  tax_status: string;
  billing_email: string | null;
  plan: 'prepaid' | 'postpaid';
  credit_limit: string;
  currency: string;
  status: string;
  created_at: Date;
  updated_at: Date;
}

export type NewAccount = Pick<AccountRow, 'name' | 'plan' | 'currency'> &
  Partial<Pick<AccountRow, 'country' | 'vat_id' | 'billing_email' | 'tax_status' | 'credit_limit'>>;

export function accountsRepo(db: DbOrTrx) {
  return {
    async insert(account: NewAccount, trx: DbOrTrx = db): Promise<AccountRow> {
      const [row] = await trx<AccountRow>('accounts').insert(account).returning('*');
      return row!;
    },
    async findById(id: string, trx: DbOrTrx = db): Promise<AccountRow | undefined> {
      return trx<AccountRow>('accounts').where({ id }).first();
    },
    /** Changes the billing details given; undefined: no such account. */
    async updateDetails(id: string, details: Partial<Pick<AccountRow, 'name' | 'vat_id' | 'billing_email' | 'country'>>, trx: DbOrTrx = db): Promise<AccountRow | undefined> {
      const rows = (await trx('accounts').where({ id }).update({ ...details, updated_at: trx.fn.now() }).returning('*')) as AccountRow[];
      return rows[0];
    },
    async list(opts: { limit: number; after?: string }, trx: DbOrTrx = db): Promise<AccountRow[]> {
      const q = trx<AccountRow>('accounts').orderBy('id').limit(opts.limit);
      if (opts.after) q.where('id', '>', opts.after);
      return q;
    },
  };
}
