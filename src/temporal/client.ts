import { Client, Connection, type ConnectionLike } from '@temporalio/client';
import type { Config } from '../config';
import { temporalConnectOptions } from './connection';
import { checkTemporalSetup } from './setup';

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
export function createTemporalClient(config: Config, logger?: SetupLogger): TemporalClientHandle {
  const { namespace, ...options } = temporalConnectOptions(config);
  const connection = Connection.lazy(options);
  const client = new Client({ connection, namespace });
  // In production a server creates nothing in Temporal: it says once what is missing.
  const setupCheck = config.dev.production && logger ? logMissingSetup(connection, client, config, logger) : undefined;
  return {
    connection,
    client,
    // A probe still retrying when the connection closes would start its next attempt on a
    // closed channel, which throws from a timer (an uncaught exception): wait for it first.
    close: async () => {
      await checksInFlight.get(connection)?.catch(() => undefined);
      await setupCheck;
      await connection.close();
    },
  };
}

type SetupLogger = { warn(obj: object, msg: string): void };

/**
 * A server's one look at the namespace at start (production only): search attributes
 * and schedules missing or outdated are logged as a warning naming `mixroute temporal
 * setup`; they do not make /readyz fail (a missing nightly schedule is no reason to take
 * a gateway out of the load balancer). Never throws.
 */
async function logMissingSetup(connection: Connection, client: Client, config: Config, logger: SetupLogger): Promise<void> {
  try {
    // Bounded, so a Temporal that is down does not hold up a shutdown that waits for this.
    const r = await connection.withDeadline(Date.now() + 10_000, () => checkTemporalSetup(connection, client, config));
    if (!r.complete) {
      logger.warn(
        { namespace: r.namespace, missingSearchAttributes: r.searchAttributes.missing, missingSchedules: r.schedules.missing, outdatedSchedules: r.schedules.outdated },
        'Temporal set-up incomplete: run `mixroute temporal setup` (servers create nothing in production)',
      );
    }
  } catch (err) {
    logger.warn({ errType: (err as Error)?.name, err: (err as Error)?.message }, 'could not check the Temporal set-up at start');
  } finally {
    releaseAsyncHooks(connection);
  }
}

/**
 * A connected client for a command or a start-up step (CLI, `mixroute dev`, the
 * worker's set-up check): fails within `connectTimeoutMs` when Temporal does not answer.
 * The caller closes the connection.
 */
export async function connectTemporal(config: Config, connectTimeoutMs = 10_000): Promise<{ connection: Connection; client: Client }> {
  const { namespace, ...options } = temporalConnectOptions(config);
  const connection = await Connection.connect({ ...options, connectTimeout: connectTimeoutMs });
  return { connection, client: new Client({ connection, namespace }) };
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
