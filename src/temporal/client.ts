import { Client, Connection } from '@temporalio/client';
import { temporalAddress, type Config } from '../config';

export interface TemporalClientHandle {
  connection: Connection;
  client: Client;
  close(): Promise<void>;
}

/**
 * A lazy connection: servers start (and answer /healthz) while Temporal is
 * still coming up or briefly away; /readyz reports it, calls retry.
 */
export function createTemporalClient(config: Config): TemporalClientHandle {
  const connection = Connection.lazy({ address: temporalAddress(config) });
  const client = new Client({ connection, namespace: config.temporal.namespace });
  return { connection, client, close: () => connection.close() };
}

/** Resolves when the server answers within `timeoutMs`; rejects otherwise. */
export async function checkTemporal(connection: Connection, timeoutMs: number): Promise<void> {
  await connection.withDeadline(Date.now() + timeoutMs, () => connection.workflowService.getSystemInfo({}));
}
