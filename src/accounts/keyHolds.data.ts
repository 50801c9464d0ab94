import type Decimal from 'decimal.js';
import type { Db } from '../db/knex';
import { insertHold, reserveSpendable, type HoldGrant } from '../ledger/holds.data';
import { holdWanted } from '../ledger/balanceGate.rules';
import { Money } from '../shared/money.rules';
import { keyHoldCap, keyLimitRefusal, type KeyLimitRefusal } from './keyLimit.rules';
import { windowFirstDay, type LimitWindow } from './keyWindow.rules';

export type KeyHoldOutcome =
  | { ok: true; grant: HoldGrant; limit: KeyLimitRefusal | null }
  | { ok: false; reason: 'insufficient' }
  | { ok: false; reason: 'key_limit'; refusal: KeyLimitRefusal };

/**
 * A slice for one key with a spend limit: keyHoldCap of keyLimit.rules.ts, then
 * holdGrant, in one transaction under the key's lock (an advisory lock, taken
 * before the balance lock; only acquisitions take it, so the order cannot
 * deadlock with settlement). Under that lock the key's held sum can only grow
 * by this transaction, so two gateway instances cannot both reserve the
 * key's last room. The limit and window are read here, not taken from the
 * gateway's key cache, so a changed limit counts from the next slice on.
 * `at` (the gateway's clock) picks the window; the returned `limit` carries its
 * next reset, when the gateway stops spending the slice.
 */
export async function acquireKeyHold(
  db: Db,
  input: { accountId: string; apiKeyId: string; need: Decimal; slice: Decimal; holder: string; ttlMs: number; overdraftAllowance: Decimal; at: Date },
): Promise<KeyHoldOutcome> {
  let want = holdWanted(input.need, input.slice);
  return db.transaction(async (trx): Promise<KeyHoldOutcome> => {
    const { rows: keys } = await trx.raw(
      `SELECT pg_advisory_xact_lock(hashtext(?)) AS locked, spend_limit, limit_window FROM api_keys WHERE id = ? AND account_id = ?`,
      [`spend_limit:${input.apiKeyId}`, input.apiKeyId, input.accountId],
    );
    const key = keys[0] as { spend_limit: string | null; limit_window: LimitWindow | null } | undefined;
    let limit: KeyLimitRefusal | null = null;
    if (key?.spend_limit) {
      limit = keyLimitRefusal(new Money(key.spend_limit), key.limit_window, input.at);
      const firstDay = windowFirstDay(key.limit_window, input.at);
      const { rows } = await trx.raw(
        `SELECT (SELECT COALESCE(sum(cost), 0) FROM usage_daily_keys WHERE api_key_id = ?${firstDay ? ' AND day >= ?::date' : ''})::text AS spend,
                (SELECT COALESCE(sum(amount - settled), 0) FROM balance_holds WHERE api_key_id = ? AND amount > settled)::text AS held`,
        firstDay ? [input.apiKeyId, firstDay, input.apiKeyId] : [input.apiKeyId, input.apiKeyId],
      );
      const cap = keyHoldCap({ limit: limit.limit, windowSpend: new Money(rows[0].spend), held: new Money(rows[0].held) }, input.need, want);
      if (!cap) return { ok: false, reason: 'key_limit', refusal: limit };
      want = cap;
    }
    const amount = await reserveSpendable(trx, input, want);
    if (!amount) return { ok: false, reason: 'insufficient' };
    return { ok: true, grant: await insertHold(trx, input, amount, input.apiKeyId), limit };
  });
}
