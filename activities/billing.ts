import { ApplicationFailure, Context } from '@temporalio/activity';
import { CONTRA } from '../src/billing/ledger';
import { Money, isDecimalString, toAmountString } from '../src/billing/money';
import type { Config } from '../src/config';
import type { Db } from '../src/db/knex';
import { NotFoundError } from '../src/errors';
import { postEntries } from '../src/db/ledger';
import { settleAccountUsage, type SettlementResult } from '../src/db/settlement';
import type { TopUpInput, TopUpResult } from '../workflows/messages';

/** Settlement batches are bounded so one transaction stays short; the workflow loops while `more`. */
export const SETTLEMENT_BATCH_LIMIT = 5_000;

export function billingActivities({ db, billing }: { db: Db; billing: Config['billing'] }) {
  const overdraftAllowance = new Money(billing.overdraftAllowance);
  return {
    async settleUsage(input: { accountId: string }): Promise<SettlementResult> {
      // Heartbeats let Temporal notice a dead worker within the heartbeat
      // timeout instead of the whole start-to-close timeout. A local activity
      // (how accountMetering runs it now) has no heartbeat: its workflow task
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
        if (input.kind === 'topup') {
          await trx('payments')
            .insert({
              provider: input.provider,
              provider_payment_id: input.paymentId,
              account_id: input.accountId,
              amount: input.amount,
              currency: input.currency.toUpperCase(),
              status: 'succeeded',
            })
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
