import { afterAll, describe, expect, it } from 'vitest';
import { accountsService } from '../../src/accounts/accounts.service';
import { keyOverview } from '../../src/accounts/clientApi.data';
import { keysService } from '../../src/accounts/keys.service';
import { windowFirstDay } from '../../src/accounts/keyWindow.rules';
import type { Clock } from '../../src/clock';
import { consoleKeysService } from '../../src/customerConsole/keys.service';
import { testConfig, testDb } from '../helpers/env';

/**
 * The spend column of the customer console's keys page (issue 26): each key's
 * settled spend in its own window, as GET /v1/key reports it (keyOverview),
 * worked out for the whole page in one grouped query, never one per key, and
 * never counting another account's usage.
 */
const config = testConfig();
const db = testDb(config);
afterAll(async () => {
  await db.destroy();
});

// A Wednesday in the middle of a month, so day, week and month windows all differ.
const now = new Date('2026-11-18T12:00:00Z');
const clock: Clock = { now: () => now };
const accounts = accountsService({ db, clock, config });

async function accountWithKeys() {
  const a = await accounts.createAccount({ name: `Spend ${Math.random().toString(36).slice(2, 8)} Ltd`, plan: 'prepaid', country: 'DE' });
  const key = async (limitWindow?: 'daily' | 'weekly' | 'monthly') =>
    (await accounts.createKey({ accountId: a.id, name: `k-${limitWindow ?? 'life'}`, ...(limitWindow ? { spendLimit: '100', limitWindow } : {}) })).id as string;
  return { accountId: a.id as string, daily: await key('daily'), weekly: await key('weekly'), monthly: await key('monthly'), lifetime: await key(), unused: await key('daily') };
}

const usage = (accountId: string, keyId: string, day: string, cost: string, model = 'gpt-x') => ({
  account_id: accountId, day, api_key_id: keyId, model, requests: 1, input_tokens: 1, cache_read_tokens: 0, cache_write_tokens: 0, output_tokens: 1, reasoning_tokens: 0, cost,
});

describe('key spend on the keys page', () => {
  it("shows each key's spend in its window, as GET /v1/key does, in one query for the page", async () => {
    const k = await accountWithKeys();
    const other = await accountWithKeys();
    // today, earlier this week (Monday), earlier this month, last month; two models on one day
    const days = ['2026-11-18', '2026-11-16', '2026-11-02', '2026-10-30'];
    const rows = [k.daily, k.weekly, k.monthly, k.lifetime].flatMap((id) => days.map((d, i) => usage(k.accountId, id, d, `${10 ** i}.5`)));
    rows.push(usage(k.accountId, k.daily, '2026-11-18', '0.25', 'gpt-y'));
    // Another account's usage, on its own keys, must not leak into these figures.
    rows.push(usage(other.accountId, other.daily, '2026-11-18', '999'));
    await db('usage_daily_keys').insert(rows);

    const sql: string[] = [];
    const listen = (q: { sql: string }) => void sql.push(q.sql);
    db.on('query', listen);
    const page = await consoleKeysService({ db, clock, keys: keysService({ db, clock }) }).list({ accountId: k.accountId, userId: '00000000-0000-4000-8000-000000000000' });
    db.off('query', listen);
    expect(sql.filter((s) => s.includes('usage_daily_keys'))).toHaveLength(1);

    const spent = Object.fromEntries(page.data.map((r) => [r.id, r.spent]));
    expect(spent).toEqual({ [k.daily]: '1.75', [k.weekly]: '12', [k.monthly]: '112.5', [k.lifetime]: '1113', [k.unused]: '0' });
    // The same as GET /v1/key's figure for each key's window.
    const win = { day: windowFirstDay('daily', now)!, week: windowFirstDay('weekly', now)!, month: windowFirstDay('monthly', now)! };
    for (const r of page.data) {
      const o = await keyOverview(db, k.accountId, r.id, win);
      const w = r.limit_reset;
      const expected = w === 'daily' ? o!.spend_day : w === 'weekly' ? o!.spend_week : w === 'monthly' ? o!.spend_month : o!.spend_lifetime;
      expect(Number(r.spent), r.id).toBe(Number(expected));
    }
  });
});
