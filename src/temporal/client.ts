import { Client, Connection, type ConnectionLike } from '@temporalio/client';
import { temporalAddress, type Config } from '../config';

export interface TemporalClientHandle {
  connection: Connection;
  client: Client;
  close(): Promise<void>;
}

/** Readiness probes in flight, per connection (see checkTemporal). */
const checksInFlight = new WeakMap<Connection, Promise<unknown>>();

/**
 * A lazy connection: servers start (and answer /healthz) while Temporal is
 * still coming up or briefly away; /readyz reports it, calls retry.
 */
export function createTemporalClient(config: Config): TemporalClientHandle {
  const connection = Connection.lazy({ address: temporalAddress(config) });
  const client = new Client({ connection, namespace: config.temporal.namespace });
  return {
    connection,
    client,
    // A probe still retrying when the connection closes would start its next attempt on a
    // closed channel, which throws from a timer (an uncaught exception): wait for it first.
    close: async () => {
      await checksInFlight.get(connection)?.catch(() => undefined);
      await connection.close();
    },
  };
}

/**
 * Switches Node's async hooks back off after the Temporal client switched them on.
 *
 * The client keeps call options (deadline, metadata) in an AsyncLocalStorage,
 * and runs its connection check inside it (`ensureConnected` uses
 * `withDeadline`). On Node 20 the first `run` of any AsyncLocalStorage turns
 * on async hooks for the whole process until every instance is disabled,
 * which taxes every promise and tick (about 3 % of the gateway's CPU in the
 * benchmark profile). Nothing in the gateway reads that storage between
 * calls: each call reads it when it starts, and a later `run` turns the
 * hooks on again for its own duration. Called after the gateway's Temporal
 * calls; the worker does not need it (its activities run in a storage of
 * their own).
 */
export function releaseAsyncHooks(connection: Connection | ConnectionLike): void {
  if ('callContextStorage' in connection) connection.callContextStorage.disable();
}

/**
 * Resolves when the server answers within `timeoutMs`; rejects otherwise.
 *
 * The call carries a deadline, so the client's retries (up to ten attempts over
 * some 20 s against a server that is down) stop at it; it switches async hooks
 * on while the probe runs, and they are released when it ends (see
 * releaseAsyncHooks). A timer bounds the caller's wait, and probes share one
 * call in flight so that a Temporal that does not answer cannot pile calls up.
 */
export async function checkTemporal(connection: Connection, timeoutMs: number): Promise<void> {
  let call = checksInFlight.get(connection);
  if (!call) {
    call = connection.withDeadline(Date.now() + timeoutMs, () => connection.workflowService.getSystemInfo({})).finally(() => {
      checksInFlight.delete(connection);
      releaseAsyncHooks(connection);
    });
    checksInFlight.set(connection, call);
  }
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      call,
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`Temporal did not answer within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
