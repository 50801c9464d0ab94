import type { DbOrTrx } from '../db/knex';

export interface UserRow {
  id: string;
  account_id: string;
  name: string;
  email: string;
  phone: string | null;
  job_title: string | null;
  processing_restricted: boolean;
  objected: boolean;
  marketing_consent: boolean;
  created_at: Date;
  updated_at: Date;
}

export type NewUser = Pick<UserRow, 'account_id' | 'name' | 'email'> & Partial<Pick<UserRow, 'phone' | 'job_title'>>;

export function usersRepo(db: DbOrTrx) {
  return {
    async insert(user: NewUser, trx: DbOrTrx = db): Promise<UserRow> {
      const [row] = await trx<UserRow>('users').insert(user).returning('*');
      return row!;
    },
    async findById(id: string, trx: DbOrTrx = db): Promise<UserRow | undefined> {
      return trx<UserRow>('users').where({ id }).first();
    },
    async listByAccount(accountId: string, trx: DbOrTrx = db): Promise<UserRow[]> {
      return trx<UserRow>('users').where({ account_id: accountId }).orderBy('created_at');
    },
  };
}
