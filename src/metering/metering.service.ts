import type Decimal from 'decimal.js';
import { Money, toAmountString } from '../shared/money.rules';
import type { Config } from '../config';
import type { Db } from '../db/knex';
import type { Logger } from '../logger';
import type { UsageRecord } from './record';
import { isAccountId } from './shards.rules';
import {
  settleAccountBatch,
  settleShardBatch,
  settlementDataErrorCode,
  shardPassAccounts,
  type AccountSettlementOptions,
  type SettlementResult,
  type ShardSettlementResult,
} from './settlement.data';
export type { SettlementResult, ShardSettlementResult } from './settlement.data';
import { ensureUsageEventsPartition, insertUsageEvents, insertUsageEventsSettingAside, walPosition } from './usageEvents.data';

/**
 * The metering service: settlement of usage (one account at a time, or a
 * settlement shard's pass with its fallback), and the usage_events writes of
 * the gateway's metering batcher. The statements are in settlement.data.ts and
 * usageEvents.data.ts; this file opens the transactions around them.
 */

/**
 * Settles an account's unsettled usage (a batch of up to `limit` events) in
 * one transaction: settleAccountBatch in settlement.data.ts.
 */
export async function settleAccountUsage(db: Db, accountId: string, opts: AccountSettlementOptions): Promise<SettlementResult> {
  return db.transaction((trx) => settleAccountBatch(trx, accountId, opts));
}

/**
 * One settlement pass of a shard in one transaction (settleShardBatch in
 * settlement.data.ts). `accounts` names the accounts to settle (the wake-up's
 * hint); without it, the pass sweeps every account of `shard` that has
 * unsettled usage.
 */
export async function settleShardUsage(
  db: Db,
  input: { shard: number; shards: number; accounts?: readonly string[]; limit: number; actor?: string },
): Promise<ShardSettlementResult> {
  // A wake-up's names are a hint: one that is not an account id is dropped, not allowed to fail every pass.
  const named = input.accounts?.filter(isAccountId);
  if (named && named.length === 0) return { events: 0, accounts: 0, cost: '0', more: false };
  return db.transaction((trx) =>
    settleShardBatch(trx, { shard: input.shard, shards: input.shards, named, limit: input.limit, ...(input.actor ? { actor: input.actor } : {}) }),
  );
}

export interface AccountByAccountResult extends ShardSettlementResult {
  /** The accounts that could not be settled, with the data error's code (settlementDataErrorCode). */
  failed: { accountId: string; code: string }[];
}

/**
 * A shard pass one account at a time, each in its own transaction
 * (settleAccountUsage, one batch of up to `limit` events per account): for
 * when the set-based pass failed with a data error, so that one account whose
 * usage cannot be settled does not hold back the rest of its pass. An account
 * that fails with a data error is left unsettled and listed in `failed`;
 * reconciliation's overdue-settlement check reports it. Any other error is
 * thrown (the caller retries). `more` is true when an account that did settle
 * has more waiting, so a pass of failing accounts only does not loop.
 */
export async function settleShardUsageByAccount(
  db: Db,
  input: { shard: number; shards: number; accounts?: readonly string[]; limit: number; overdraftAllowance: Decimal; actor?: string },
): Promise<AccountByAccountResult> {
  const result: AccountByAccountResult = { events: 0, accounts: 0, cost: '0', more: false, failed: [] };
  let cost = new Money(0);
  for (const accountId of await shardPassAccounts(db, input)) {
    try {
      const r = await settleAccountUsage(db, accountId, { limit: input.limit, overdraftAllowance: input.overdraftAllowance, ...(input.actor ? { actor: input.actor } : {}) });
      if (r.events > 0) result.accounts += 1;
      result.events += r.events;
      cost = cost.plus(r.cost);
      if (r.more) result.more = true;
    } catch (err) {
      const code = settlementDataErrorCode(err);
      if (code === undefined) throw err;
      result.failed.push({ accountId, code });
    }
  }
  result.cost = toAmountString(cost);
  return result;
}

/** Settlement batches are bounded so one transaction stays short; the workflow loops while `more`. */
export const SETTLEMENT_BATCH_LIMIT = 5_000;

export interface MeteringDeps {
  db: Db;
  billing: Config['billing'];
  logger: Logger;
}

export function meteringService({ db, billing, logger }: MeteringDeps) {
  const overdraftAllowance = new Money(billing.overdraftAllowance);
  return {
    /** One batch of the account's unsettled usage (SETTLEMENT_BATCH_LIMIT events at most). */
    settleUsage(accountId: string): Promise<SettlementResult> {
      return settleAccountUsage(db, accountId, { limit: SETTLEMENT_BATCH_LIMIT, overdraftAllowance });
    },

    /**
     * One settlement pass of a shard: the named accounts, or a sweep of the
     * shard. The shard count and batch size are the worker's settings, so
     * every shard workflow of a worker fleet splits the accounts the same way.
     *
     * A pass that fails because of what some account's usage holds (a data
     * error: retrying it would fail forever and hold up the whole shard) is
     * redone one account at a time; an account that still fails is logged
     * (its id and the error code only) and left unsettled, for
     * reconciliation's overdue-settlement check. Other errors are thrown and
     * the pass retried.
     */
    async settleShard(input: { shard: number; accounts?: readonly string[] }): Promise<ShardSettlementResult> {
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
  };
}

export type MeteringService = ReturnType<typeof meteringService>;

/**
 * The metering batcher's writes (src/metering/batcher.ts), bound to its pool:
 * the batcher keeps its batching, retries and signals, and holds no database
 * handle itself.
 */
export function usageEventStore(db: Db) {
  return {
    insert: (records: UsageRecord[]): Promise<void> => insertUsageEvents(db, records),
    insertSettingAside: (records: UsageRecord[], isRefused: (err: unknown) => boolean) => insertUsageEventsSettingAside(db, records, isRefused),
    walPosition: (position: 'insert' | 'flush') => walPosition(db, position),
    ensurePartition: (day: string): Promise<void> => ensureUsageEventsPartition(db, day),
  };
}

export type UsageEventStore = ReturnType<typeof usageEventStore>;
