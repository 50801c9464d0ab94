import { setTimeout as sleep } from 'node:timers/promises';
import { isGrpcServiceError, type Client, type Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common';
import type { Config } from '../config';
import { missingSearchAttributes, ensureSearchAttributes } from './namespace';
import { SEARCH_ATTRIBUTES } from './searchAttributes';
import { ensureSchedules, productionSchedules, scheduleStates } from './schedules';

/**
 * `mixroute temporal setup`: what MixRoute needs in its Temporal namespace, made so
 * idempotently. The namespace (only when asked: in production it is the platform
 * team's, or Temporal Cloud's), the custom search attributes, the schedules. Running
 * it again changes nothing. `mixroute dev` runs it with createNamespace; outside
 * production a worker runs it (without the namespace) at start; in production the
 * processes only check and log what is missing (checkTemporalSetup).
 */
export interface TemporalSetupResult {
  namespace: { name: string; status: 'created' | 'exists' | 'missing' };
  searchAttributes: { added: string[]; missing: string[] };
  schedules: { created: string[]; updated: string[]; unchanged: string[]; missing: string[]; outdated: string[] };
  /** Whether this run changed anything in Temporal. */
  changed: boolean;
  /** Whether the namespace has everything (after the run; for a check, before). */
  complete: boolean;
}

export interface TemporalSetupOptions {
  /** Register the namespace when it does not exist. */
  createNamespace?: boolean;
  /** Its history retention, when created. */
  retentionDays?: number;
  /** Change nothing: report what is missing. */
  checkOnly?: boolean;
  /** How long to wait for a namespace just created to answer (a cluster's frontends learn of it within ~10 s). */
  namespaceReadyTimeoutMs?: number;
}

/** gRPC's NOT_FOUND status code (the client does not re-export grpc-js's enum). */
const GRPC_NOT_FOUND = 5;

type SetupConfig = Pick<Config, 'reconcile' | 'retention'> & { temporal: Pick<Config['temporal'], 'namespace' | 'taskQueue'> };

export async function runTemporalSetup(connection: Connection, client: Client, config: SetupConfig, options: TemporalSetupOptions = {}): Promise<TemporalSetupResult> {
  const { namespace, taskQueue } = config.temporal;
  const declared = productionSchedules(config);
  const result: TemporalSetupResult = {
    namespace: { name: namespace, status: 'exists' },
    searchAttributes: { added: [], missing: [] },
    schedules: { created: [], updated: [], unchanged: [], missing: [], outdated: [] },
    changed: false,
    complete: false,
  };

  if (!(await namespaceExists(connection, namespace))) {
    if (options.checkOnly || !options.createNamespace) {
      result.namespace.status = 'missing';
      result.searchAttributes.missing = SEARCH_ATTRIBUTES.map((a) => a.name);
      result.schedules.missing = declared.map((d) => d.scheduleId);
      return result;
    }
    await connection.workflowService.registerNamespace({
      namespace,
      workflowExecutionRetentionPeriod: msToTs(`${options.retentionDays ?? 30} days`),
    });
    result.namespace.status = 'created';
    result.changed = true;
    await waitForNamespace(connection, namespace, options.namespaceReadyTimeoutMs ?? 60_000);
  }

  if (options.checkOnly) {
    result.searchAttributes.missing = await missingSearchAttributes(connection, namespace);
    const states = await scheduleStates(client, declared, taskQueue);
    for (const [id, state] of Object.entries(states)) {
      if (state === 'missing') result.schedules.missing.push(id);
      else if (state === 'outdated') result.schedules.outdated.push(id);
      else result.schedules.unchanged.push(id);
    }
    result.complete = result.searchAttributes.missing.length === 0 && result.schedules.missing.length === 0 && result.schedules.outdated.length === 0;
    return result;
  }

  result.searchAttributes.added = await retryWhileNamespaceUnknown(() => ensureSearchAttributes(connection, namespace));
  const schedules = await retryWhileNamespaceUnknown(() => ensureSchedules(client, declared, taskQueue));
  result.schedules.created = schedules.created;
  result.schedules.updated = schedules.updated;
  result.schedules.unchanged = declared.map((d) => d.scheduleId).filter((id) => !schedules.created.includes(id) && !schedules.updated.includes(id));
  result.changed ||= result.searchAttributes.added.length > 0 || schedules.created.length > 0 || schedules.updated.length > 0;
  result.complete = true;
  return result;
}

/** The check a production process makes at start: changes nothing. */
export function checkTemporalSetup(connection: Connection, client: Client, config: SetupConfig): Promise<TemporalSetupResult> {
  return runTemporalSetup(connection, client, config, { checkOnly: true });
}

/** One line per part, for people. */
export function describeSetup(r: TemporalSetupResult): string[] {
  const list = (xs: string[]) => (xs.length ? xs.join(', ') : '(none)');
  const s = r.schedules;
  return [
    `namespace ${r.namespace.name}: ${r.namespace.status}`,
    r.searchAttributes.missing.length ? `search attributes missing: ${list(r.searchAttributes.missing)}` : `search attributes added: ${list(r.searchAttributes.added)}`,
    `schedules created: ${list(s.created)}; updated: ${list(s.updated)}; unchanged: ${list(s.unchanged)}` +
      (s.missing.length || s.outdated.length ? `; missing: ${list(s.missing)}; outdated: ${list(s.outdated)}` : ''),
    r.changed ? 'changed: yes' : 'changed: nothing',
  ];
}

async function namespaceExists(connection: Connection, namespace: string): Promise<boolean> {
  try {
    await connection.workflowService.describeNamespace({ namespace });
    return true;
  } catch (err) {
    if (isGrpcServiceError(err) && err.code === GRPC_NOT_FOUND) return false;
    throw err;
  }
}

async function waitForNamespace(connection: Connection, namespace: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await namespaceExists(connection, namespace))) {
    if (Date.now() > deadline) throw new Error(`namespace ${namespace} was registered but does not answer after ${timeoutMs} ms`);
    await sleep(500);
  }
}

/**
 * A namespace registered a moment ago can still be unknown to the frontend serving the
 * next call (each node refreshes its namespace cache every few seconds): retry those.
 */
async function retryWhileNamespaceUnknown<T>(fn: () => Promise<T>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      const unknown = (isGrpcServiceError(err) && err.code === GRPC_NOT_FOUND) || /namespace.*not found/i.test((err as Error)?.message ?? '');
      if (!unknown || Date.now() > deadline) throw err;
      await sleep(1_000);
    }
  }
}
