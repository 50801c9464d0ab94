import type { Db } from '../db/knex';
import { callerByKeyHash } from './keys.data';
import { loadRoutingRows } from './routing.data';
import { upsertSecurityEvents } from './securityEvents.data';
import type { RoutingRows } from './routingTable';
import type { SecurityEventRow } from './securityEvents';

/**
 * The gateway's database reads and writes, bound to the pool. The key cache, the routing table and the security
 * event sink take these functions rather than the handle, so their caching and batching hold no SQL and the
 * composition root (server.ts) opens the pool without reaching into data access.
 */
export function gatewayService(db: Db) {
  return {
    callerByKeyHash: (hash: string) => callerByKeyHash(db, hash),
    routingRows: (): Promise<RoutingRows> => loadRoutingRows(db),
    writeSecurityEvents: (rows: SecurityEventRow[]): Promise<void> => upsertSecurityEvents(db, rows),
  };
}

export type GatewayService = ReturnType<typeof gatewayService>;
