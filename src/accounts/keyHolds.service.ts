import type { Db } from '../db/knex';
import { acquireKeyHold, type KeyHoldOutcome } from './keyHolds.data';

/**
 * Slices for keys with a spend limit, for the gateway's balance gate
 * (src/gateway/balanceGate.ts): a balance hold that also counts against the
 * key's limit in its window (keyLimit.rules.ts).
 */
export function keyHoldsService(db: Db) {
  return {
    acquireForKey: (input: Parameters<typeof acquireKeyHold>[1]): Promise<KeyHoldOutcome> => acquireKeyHold(db, input),
  };
}

export type KeyHoldsService = ReturnType<typeof keyHoldsService>;
