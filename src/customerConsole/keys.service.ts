import { keysSpend } from '../accounts/clientApi.data';
import { Money, toAmountString } from '../shared/money.rules';
import { KEYS_PAGE_MAX } from '../accounts/keys.schemas';
import type { KeyActor, KeysService } from '../accounts/keys.service';
import { windowFirstDay } from '../accounts/keyWindow.rules';
import type { Clock } from '../clock';
import type { Db } from '../db/knex';
import type { CustomerSession } from './customerConsole.service';

/**
 * The customer console's API keys (/app/keys): the account's key service
 * (src/accounts/keys.service.ts, the one /v1/keys uses) with the signed-in
 * member as the actor, plus each key's settled spend in its current window
 * (as GET /v1/key reports it). The role is checked by the page kit; the
 * account is always the session's.
 */
export function consoleKeysService({ db, clock, keys }: { db: Db; clock: Clock; keys: KeysService }) {
  const actor = (s: Pick<CustomerSession, 'accountId' | 'userId'>): KeyActor => ({ accountId: s.accountId, userId: s.userId, kind: 'member' });

  return {
    /** A page of keys (creation order, revoked ones too) with what each spent in its current limit window. */
    async list(s: Pick<CustomerSession, 'accountId' | 'userId'>, after?: string) {
      const page = await keys.list(actor(s), { limit: KEYS_PAGE_MAX, ...(after ? { after } : {}) });
      const now = clock.now();
      const days = { day: windowFirstDay('daily', now)!, week: windowFirstDay('weekly', now)!, month: windowFirstDay('monthly', now)! };
      // One grouped query for the whole page, not one per key.
      const spend = await keysSpend(db, s.accountId, page.data.map((k) => k.id), days);
      const data = page.data.map((k) => {
        const o = spend.get(k.id);
        const w = k.limit_reset;
        const spent = !o ? '0' : w === 'daily' ? o.spend_day : w === 'weekly' ? o.spend_week : w === 'monthly' ? o.spend_month : o.spend_lifetime;
        return { ...k, spent: toAmountString(new Money(spent)) };
      });
      return { data, hasMore: page.has_more, lastId: page.last_id };
    },
    get: (s: Pick<CustomerSession, 'accountId' | 'userId'>, id: string) => keys.get(actor(s), id),
    create: (s: Pick<CustomerSession, 'accountId' | 'userId'>, input: Record<string, unknown>) => keys.create(actor(s), input),
    update: (s: Pick<CustomerSession, 'accountId' | 'userId'>, id: string, input: Record<string, unknown>) => keys.update(actor(s), id, input),
    revoke: (s: Pick<CustomerSession, 'accountId' | 'userId'>, id: string) => keys.revoke(actor(s), id),
  };
}
export type ConsoleKeysService = ReturnType<typeof consoleKeysService>;
