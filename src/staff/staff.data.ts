import type { DbOrTrx } from '../db/knex';

export type StaffRole = 'billing' | 'compliance' | 'admin';
export const STAFF_ROLES: readonly StaffRole[] = ['billing', 'compliance', 'admin'];

export interface StaffTokenRow {
  id: string;
  role: StaffRole;
  name: string | null;
  token_hash: string;
  prefix: string;
  created_at: Date;
  revoked_at: Date | null;
}

export function staffTokensRepo(db: DbOrTrx) {
  return {
    async insert(
      token: Pick<StaffTokenRow, 'role' | 'token_hash' | 'prefix'> & { name?: string | null },
      trx: DbOrTrx = db,
    ): Promise<StaffTokenRow> {
      const [row] = await trx<StaffTokenRow>('staff_tokens').insert(token).returning('*');
      return row!;
    },
    async findActiveByHash(tokenHash: string, trx: DbOrTrx = db): Promise<StaffTokenRow | undefined> {
      return trx<StaffTokenRow>('staff_tokens').where({ token_hash: tokenHash }).whereNull('revoked_at').first();
    },
    /**
     * Revokes the token and, in the same transaction, every console session
     * opened with it: a revoked token must not live on in a browser.
     */
    async revoke(id: string, at: Date, trx: DbOrTrx = db): Promise<StaffTokenRow | undefined> {
      return trx.transaction(async (t) => {
        await t('staff_tokens').where({ id }).whereNull('revoked_at').update({ revoked_at: at });
        await t('console_sessions').where({ staff_token_id: id }).whereNull('revoked_at').update({ revoked_at: at });
        return t<StaffTokenRow>('staff_tokens').where({ id }).first();
      });
    },
  };
}
