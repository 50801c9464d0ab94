import type { Db } from '../db/knex';
import { openHolds, recentPayments, searchAccounts, usageByDayAndModel } from './accountPage.data';

/** What the console's account list and account page show besides the balance (which the ledger service gives). */
export function accountPageService({ db }: { db: Db }) {
  return {
    search: (q: string) => searchAccounts(db, q, 50),
    async activity(accountId: string) {
      const holds = await openHolds(db, accountId, 20);
      const payments = await recentPayments(db, accountId, 20);
      const usage = await usageByDayAndModel(db, accountId, new Date(Date.now() - 30 * 86_400_000));
      return { holds, payments, usage };
    },
  };
}

export type AccountPageService = ReturnType<typeof accountPageService>;
