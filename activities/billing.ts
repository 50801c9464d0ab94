import { failingPermanentlyOn, permanentFailure } from './errors';
import { withHeartbeat } from './heartbeat';
import { Money, isDecimalString } from '../src/shared/money.rules';
import { NotFoundError } from '../src/errors';
import type { LedgerService } from '../src/ledger/ledger.service';
import type { MeteringService, SettlementResult, ShardSettlementResult } from '../src/metering/metering.service';
import type { SettleShardInput, TopUpInput, TopUpResult } from '../workflows/messages';

export function billingActivities({ ledger, metering }: { ledger: LedgerService; metering: MeteringService }) {
  return {
    async settleUsage(input: { accountId: string }): Promise<SettlementResult> {
      // accountMetering runs it as a local activity, which has no heartbeat (withHeartbeat sends none).
      return withHeartbeat({ everyMs: 1_000, beatAtStart: true }, () =>
        failingPermanentlyOn([[NotFoundError, 'UnknownAccount']], () => metering.settleUsage(input.accountId)),
      );
    },

    /**
     * One settlement pass of a shard (a local activity of `settlementShard`);
     * a pass failing with a data error is redone one account at a time
     * (meteringService.settleShard).
     */
    async settleShard(input: SettleShardInput): Promise<ShardSettlementResult> {
      return metering.settleShard(input);
    },

    /**
     * Records a payment (for top-ups) and credits it once: the payment is
     * unique per provider and payment id, the ledger entry per idempotency key,
     * both in one transaction. Bad input is a business rejection: retrying
     * cannot fix it, so it fails the workflow at once.
     */
    async recordTopUp(input: TopUpInput): Promise<TopUpResult> {
      if (!isDecimalString(input.amount) || !new Money(input.amount).gt(0)) {
        throw permanentFailure(`amount ${input.amount} is not a positive decimal`, 'InvalidAmount');
      }
      const account = await ledger.topUpAccount(input.accountId);
      if (!account) throw permanentFailure(`account ${input.accountId} does not exist`, 'UnknownAccount');
      if (account.currency !== input.currency.toUpperCase()) {
        throw permanentFailure(`payment currency ${input.currency} differs from the account's ${account.currency}`, 'CurrencyMismatch');
      }
      return ledger.recordTopUp(input);
    },
  };
}
