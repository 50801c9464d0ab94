import type Decimal from 'decimal.js';
import type { Db } from '../db/knex';
import { acquireHold, closeHold, expireHolds, type HoldGrant } from './holds.data';

/**
 * Balance holds, for the gateway's balance gate (src/gateway/balanceGate.ts):
 * the pool is bound here once, so the gate's hot path runs the same queries as
 * before without holding the database handle itself.
 */
export function holdsService(db: Db) {
  return {
    acquire: (input: Parameters<typeof acquireHold>[1]): Promise<HoldGrant | undefined> => acquireHold(db, input),
    close: (holdId: string, spent: Decimal): Promise<void> => closeHold(db, holdId, spent),
    expire: (): Promise<number> => expireHolds(db),
  };
}

export type HoldsService = ReturnType<typeof holdsService>;
