import { ApplicationFailure, Context } from '@temporalio/activity';
import { CONTRA } from '../src/ledger/ledger.rules';
import { Money, isDecimalString, toAmountString } from '../src/shared/money.rules';
import type { Config } from '../src/config';
import type { Db, Trx } from '../src/db/knex';
import { NotFoundError } from '../src/errors';
import { postEntries } from '../src/ledger/ledger.data';
import { settleAccountUsage, settleShardUsage, settleShardUsageByAccount, settlementDataErrorCode, type SettlementResult, type ShardSettlementResult } from '../src/metering/settlement.data';
import type { Logger } from '../src/logger';
import type { SettleShardInput, TopUpInput, TopUpResult } from '../workflows/messages';

/**
 * Whether the payment's customer may credit the account it names, in the
 * top-up's transaction (the account row locked, so two first payments cannot
 * both bind it). The account's customer is bound by its first payment that
 * carries one; after that only that customer's payments credit it, and a
 * customer bound to one account never credits another (UNIQUE). A refused
 * payment is recorded with status 'customer_mismatch' and credits nothing:
 * reconciliation counts only succeeded payments, and billing staff find it
 * in payments. The answer is the same on every retry and redelivery.
 */
/** The payments row of a top-up, credited (`succeeded`) or refused (`customer_mismatch`). */
function paymentRow(input: TopUpInput, status: 'succeeded' | 'customer_mismatch') {
  return {
    provider: input.provider,
    provider_payment_id: input.paymentId,
    account_id: input.accountId,
    amount: input.amount,
    currency: input.currency.toUpperCase(),
    status,
    customer_id: input.customerId ?? null,
  };
}

async function checkPaymentCustomer(trx: Trx, input: TopUpInput): Promise<TopUpResult | undefined> {
  const customer = input.customerId ?? null;
  const refuse = async (): Promise<TopUpResult> => {
    await trx('payments')
      .insert(paymentRow(input, 'customer_mismatch'))
      .onConflict(['provider', 'provider_payment_id'])
      .ignore();
    const b = await trx('account_balances').where({ account_id: input.accountId }).first<{ balance: string } | undefined>('balance');
    return { entryId: null, applied: false, balanceAfter: toAmountString(new Money(b?.balance ?? '0')), refused: 'customer_mismatch' };
  };
  const earlier = await trx('payments').where({ provider: input.provider, provider_payment_id: input.paymentId }).first<{ status: string } | undefined>('status');
  if (earlier?.status === 'customer_mismatch') return refuse();
  if (earlier) return undefined;
  const account = await trx('accounts').where({ id: input.accountId }).forUpdate().first<{ stripe_customer_id: string | null }>('stripe_customer_id');
  const bound = account.stripe_customer_id;
  if (bound !== null) return bound === customer ? undefined : refuse();
  if (customer === null) return undefined;
  const other = await trx('accounts').where({ stripe_customer_id: customer }).whereNot({ id: input.accountId }).first('id');
  if (other) return refuse();
  await trx('accounts').where({ id: input.accountId }).update({ stripe_customer_id: customer });
  return undefined;
}

/** Settlement batches are bounded so one transaction stays short; the workflow loops while `more`. */
export const SETTLEMENT_BATCH_LIMIT = 5_000;

export function billingActivities({ db, billing, logger }: { db: Db; billing: Config['billing']; logger: Logger }) {
  const overdraftAllowance = new Money(billing.overdraftAllowance);
  return {
    async settleUsage(input: { accountId: string }): Promise<SettlementResult> {
      // Heartbeats let Temporal notice a dead worker within the heartbeat
      // timeout instead of the whole start-to-close timeout. A local activity
      // (how accountMetering runs it, and drains) has no heartbeat: its workflow task
      // timing out plays that part.
      const local = Context.current().info.isLocal;
      const beat = local ? undefined : setInterval(() => Context.current().heartbeat(), 1_000);
      try {
        if (!local) Context.current().heartbeat();
        return await settleAccountUsage(db, input.accountId, { limit: SETTLEMENT_BATCH_LIMIT, overdraftAllowance });
      } catch (err) {
        if (err instanceof NotFoundError) throw ApplicationFailure.nonRetryable(err.message, 'UnknownAccount');
        throw err;
      } finally {
        clearInterval(beat);
      }
    },

    /**
     * One settlement pass of a shard (a local activity of `settlementShard`):
     * the named accounts, or a sweep of the shard. The shard count and batch
     * size are the worker's settings, so every shard workflow of a worker
     * fleet splits the accounts the same way.
     *
     * A pass that fails because of what some account's usage holds (a data
     * error: retrying it would fail forever and hold up the whole shard) is
     * redone one account at a time; an account that still fails is logged
     * (its id and the error code only) and left unsettled, for
     * reconciliation's overdue-settlement check. Other errors are thrown and
     * the pass retried.
     */
    async settleShard(input: SettleShardInput): Promise<ShardSettlementResult> {
      const pass = {
        shard: input.shard,
        shards: billing.settlementShards,
        ...(input.accounts ? { accounts: input.accounts } : {}),
        limit: billing.settlementBatchEvents,
      };
      try {
        return await settleShardUsage(db, pass);
      } catch (err) {
        const code = settlementDataErrorCode(err);
        if (code === undefined) throw err;
        logger.warn({ shard: input.shard, code }, 'shard settlement pass failed with a data error; settling its accounts one at a time');
        const { failed, ...result } = await settleShardUsageByAccount(db, { ...pass, overdraftAllowance });
        for (const f of failed) logger.error({ shard: input.shard, accountId: f.accountId, code: f.code }, 'account usage cannot be settled (data error); left unsettled');
        return { ...result, ...(failed.length > 0 ? { failedAccounts: failed.length } : {}) };
      }
    },

    /**
     * Records a payment (for top-ups) and credits it once: the payment is
     * unique per provider and payment id, the ledger entry per idempotency key,
     * both in one transaction. Bad input is a business rejection: retrying
     * cannot fix it, so it fails the workflow at once.
     */
    async recordTopUp(input: TopUpInput): Promise<TopUpResult> {
      if (!isDecimalString(input.amount) || !new Money(input.amount).gt(0)) {
        throw ApplicationFailure.nonRetryable(`amount ${input.amount} is not a positive decimal`, 'InvalidAmount');
      }
      const account = await db('accounts').where({ id: input.accountId }).first('id', 'currency', 'status');
      if (!account) throw ApplicationFailure.nonRetryable(`account ${input.accountId} does not exist`, 'UnknownAccount');
      if (account.currency !== input.currency.toUpperCase()) {
        throw ApplicationFailure.nonRetryable(`payment currency ${input.currency} differs from the account's ${account.currency}`, 'CurrencyMismatch');
      }
      return db.transaction(async (trx) => {
        if (input.kind === 'topup' && input.provider !== 'manual') {
          const refused = await checkPaymentCustomer(trx, input);
          if (refused) return refused;
        }
        if (input.kind === 'topup') {
          await trx('payments')
            .insert(paymentRow(input, 'succeeded'))
            .onConflict(['provider', 'provider_payment_id'])
            .ignore();
        }
        const [r] = await postEntries(
          trx,
          [
            {
              accountId: input.accountId,
              kind: input.kind,
              contra: CONTRA[input.kind],
              amount: new Money(input.amount),
              idempotencyKey: `${input.kind}:${input.provider}:${input.paymentId}`,
              referenceType: input.kind === 'topup' ? 'payment' : 'staff_reference',
              referenceId: `${input.provider}:${input.paymentId}`,
              actor: input.actor,
            },
          ],
          { overdraftAllowance },
        );
        return { entryId: r!.entry.id, applied: r!.applied, balanceAfter: toAmountString(new Money(r!.entry.balance_after)) };
      });
    },
  };
}
