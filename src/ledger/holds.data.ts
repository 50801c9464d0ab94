import type Decimal from 'decimal.js';
import { Money, toAmountString } from '../shared/money.rules';
import type { Db, Trx } from '../db/knex';
import { closedHoldAmount, holdWanted } from './balanceGate.rules';
import { SPENDABLE_SQL } from './ledger.data';

/**
 * Balance holds: the gateway's reservations against spendable balance
 * (spendable in ledger.rules.ts). A hold reserves `amount`; settlement of usage
 * charged to it raises `settled`; the account's `held` is the sum over holds
 * of (amount - settled). Gateways take holds in slices and spend them locally
 * (src/gateway/balanceGate.ts), so the hot path touches the database once per
 * slice, not once per request.
 */
export interface HoldGrant {
  holdId: string;
  amount: Decimal;
  expiresAt: Date;
}

/**
 * Atomically reserves up to `slice` (at least `need`) of the account's
 * spendable balance (SPENDABLE_SQL): holdGrant of balanceGate.rules.ts, in
 * SQL under the balance lock. Returns undefined when even `need` is not
 * available.
 */
export async function acquireHold(
  db: Db,
  input: { accountId: string; need: Decimal; slice: Decimal; holder: string; ttlMs: number; overdraftAllowance: Decimal },
): Promise<HoldGrant | undefined> {
  const want = holdWanted(input.need, input.slice);
  return db.transaction(async (trx) => {
    const amount = await reserveSpendable(trx, input, want);
    return amount ? insertHold(trx, input, amount, null) : undefined;
  });
}

/**
 * holdGrant in SQL under the balance lock: reserves up to `want` (at least
 * `need`) of the account's spendable balance, in the caller's transaction.
 */
export async function reserveSpendable(trx: Trx, input: { accountId: string; need: Decimal; overdraftAllowance: Decimal }, want: Decimal): Promise<Decimal | undefined> {
  await trx.raw(`INSERT INTO account_balances (account_id) SELECT id FROM accounts WHERE id = ? ON CONFLICT DO NOTHING`, [input.accountId]);
  const { rows } = await trx.raw(
    `WITH acc AS (
       SELECT b.account_id,
              ${SPENDABLE_SQL} AS spendable
         FROM account_balances b JOIN accounts a ON a.id = b.account_id
        WHERE b.account_id = ? AND a.status = 'active'
          FOR UPDATE OF b)
     UPDATE account_balances b
        SET held = b.held + LEAST(?::numeric, acc.spendable), updated_at = now()
       FROM acc
      WHERE b.account_id = acc.account_id AND acc.spendable >= ?::numeric
     RETURNING LEAST(?::numeric, acc.spendable) AS granted`,
    [toAmountString(input.overdraftAllowance), input.accountId, toAmountString(want), toAmountString(input.need), toAmountString(want)],
  );
  return rows.length ? new Money(rows[0].granted as string) : undefined;
}

/** Records a hold of `amount` (already added to the account's held total); `apiKeyId` for a key's slice. */
export async function insertHold(trx: Trx, input: { accountId: string; holder: string; ttlMs: number }, amount: Decimal, apiKeyId: string | null): Promise<HoldGrant> {
  const expiresAt = new Date(Date.now() + input.ttlMs);
  const [hold] = await trx('balance_holds')
    .insert({ account_id: input.accountId, api_key_id: apiKeyId, amount: toAmountString(amount), holder: input.holder, expires_at: expiresAt })
    .returning('id');
  return { holdId: hold.id as string, amount, expiresAt };
}

/**
 * Locks the hold's account balance, then the hold: the same order as
 * acquisition and settlement, so they never deadlock.
 */
async function lockHold(trx: Trx, holdId: string) {
  const peek = await trx('balance_holds').where({ id: holdId }).first('account_id');
  if (!peek) return undefined;
  await trx.raw(`SELECT 1 FROM account_balances WHERE account_id = ? FOR UPDATE`, [peek.account_id]);
  return trx('balance_holds').where({ id: holdId }).forUpdate().first();
}

/**
 * Closes a hold the gateway is done with, shrinking it to what was spent from
 * it (never below what is already settled). The unsettled part stays held
 * until its usage is settled.
 */
export async function closeHold(db: Db, holdId: string, spent: Decimal): Promise<void> {
  await db.transaction(async (trx) => {
    const hold = await lockHold(trx, holdId);
    if (!hold || hold.status === 'closed') return;
    const target = closedHoldAmount({ amount: new Money(hold.amount), settled: new Money(hold.settled) }, spent);
    const release = new Money(hold.amount).minus(target);
    await trx('balance_holds').where({ id: holdId }).update({ amount: toAmountString(target), status: 'closed', closed_at: trx.fn.now() });
    if (release.gt(0)) {
      await trx.raw(`UPDATE account_balances SET held = held - ?::numeric, updated_at = now() WHERE account_id = ?`, [toAmountString(release), hold.account_id]);
    }
  });
}

/**
 * Closes holds whose gateway went away without closing them: they shrink to
 * what was settled. Usage they covered that is settled later is still
 * debited in full; it just no longer finds a reservation.
 */
export async function expireHolds(db: Db, now: Date = new Date()): Promise<number> {
  const expired: { id: string }[] = await db('balance_holds').where({ status: 'open' }).where('expires_at', '<', now).select('id').limit(500);
  for (const h of expired) {
    await db.transaction(async (trx) => {
      const hold = await lockHold(trx, h.id);
      if (!hold || hold.status === 'closed') return;
      const release = new Money(hold.amount).minus(hold.settled);
      await trx('balance_holds').where({ id: h.id }).update({ amount: hold.settled, status: 'closed', closed_at: trx.fn.now() });
      if (release.gt(0)) {
        await trx.raw(`UPDATE account_balances SET held = held - ?::numeric, updated_at = now() WHERE account_id = ?`, [toAmountString(release), hold.account_id]);
      }
    });
  }
  return expired.length;
}
