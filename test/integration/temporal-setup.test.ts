import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { msToTs } from '@temporalio/common';
import { runCli, runCliJson } from '../helpers/cli';
import { testConfig, testEnv } from '../helpers/env';
import { eventually } from '../helpers/eventually';
import { productionSchedules } from '../../src/temporal/schedules';
import { SEARCH_ATTRIBUTES } from '../../src/temporal/searchAttributes';
import { setUpTemporal } from '../../src/worker/runWorker';
import { createTemporalClient } from '../../src/temporal/client';
import type { TemporalSetupResult } from '../../src/temporal/setup';

/**
 * `mixroute temporal setup` against the test dev server, each case in a namespace
 * of its own: it makes what is missing, a second run changes nothing, and a
 * production worker creates nothing and says what is missing.
 */
const config = testConfig();
let connection: Connection;
beforeAll(async () => {
  connection = await Connection.connect({ address: config.temporal.address! });
});
afterAll(() => connection.close());

const scheduleIds = productionSchedules(config).map((d) => d.scheduleId);
const attributeNames = SEARCH_ATTRIBUTES.map((a) => a.name);

async function customAttributes(namespace: string): Promise<string[]> {
  const { customAttributes: found } = await connection.operatorService.listSearchAttributes({ namespace });
  return Object.keys(found ?? {});
}

async function scheduleIdsIn(namespace: string): Promise<string[]> {
  const ids: string[] = [];
  for await (const s of new Client({ connection, namespace }).schedule.list()) ids.push(s.scheduleId);
  return ids.sort();
}

describe('mixroute temporal setup', () => {
  it('creates the namespace only when asked, then attributes and schedules; a second run changes nothing', async () => {
    const namespace = `setup-${randomUUID()}`;
    const env = testEnv(config, { TEMPORAL_NAMESPACE: namespace });

    const refused = await runCli(['temporal', 'setup', '--json'], env);
    expect(refused.code).toBe(1);
    expect(JSON.parse(refused.stdout)).toMatchObject({ namespace: { name: namespace, status: 'missing' }, changed: false, complete: false });

    const first = await runCliJson<TemporalSetupResult>(['temporal', 'setup', '--create-namespace'], env);
    expect(first).toMatchObject({
      namespace: { name: namespace, status: 'created' },
      searchAttributes: { added: attributeNames, missing: [] },
      schedules: { created: scheduleIds, updated: [], unchanged: [] },
      changed: true,
      complete: true,
    });
    expect(await customAttributes(namespace)).toEqual(expect.arrayContaining(attributeNames));
    expect(await scheduleIdsIn(namespace)).toEqual([...scheduleIds].sort());
    const reconcile = await new Client({ connection, namespace }).schedule.getHandle('reconcile-daily').describe();
    expect(reconcile.action).toMatchObject({ type: 'startWorkflow', workflowType: 'reconcile', taskQueue: config.temporal.taskQueue });

    const second = await runCliJson<TemporalSetupResult>(['temporal', 'setup', '--create-namespace'], env);
    expect(second).toMatchObject({
      namespace: { status: 'exists' },
      searchAttributes: { added: [], missing: [] },
      schedules: { created: [], updated: [], unchanged: scheduleIds },
      changed: false,
      complete: true,
    });
    const human = await runCli(['temporal', 'setup'], env);
    expect(human.code).toBe(0);
    expect(human.stdout).toContain('changed: nothing');

    // A changed schedule time is an update (and --check sees it first, changing nothing).
    const moved = testEnv(config, { TEMPORAL_NAMESPACE: namespace, RECONCILE_DAILY_AT: '05:45' });
    const check = await runCli(['temporal', 'setup', '--check', '--json'], moved);
    expect(check.code).toBe(1);
    expect(JSON.parse(check.stdout)).toMatchObject({ schedules: { outdated: ['reconcile-daily'] }, changed: false, complete: false });
    expect(await runCliJson(['temporal', 'setup'], moved)).toMatchObject({ schedules: { updated: ['reconcile-daily'] }, changed: true });
    expect(await runCliJson(['temporal', 'setup', '--check'], moved)).toMatchObject({ complete: true, changed: false });
  });
});

describe('a worker in production', () => {
  it('creates nothing in Temporal: it logs what is missing, once; outside production it sets up', async () => {
    const namespace = `bare-${randomUUID()}`;
    await connection.workflowService.registerNamespace({ namespace, workflowExecutionRetentionPeriod: msToTs('1 day') });
    await eventually(() => connection.workflowService.describeNamespace({ namespace }), { timeoutMs: 30_000, message: 'the new namespace answers' });

    const logged: { level: string; obj: unknown; msg: string }[] = [];
    const logger = {
      info: (obj: unknown, msg: string) => logged.push({ level: 'info', obj, msg }),
      warn: (obj: unknown, msg: string) => logged.push({ level: 'warn', obj, msg }),
      error: (obj: unknown, msg: string) => logged.push({ level: 'error', obj, msg }),
    } as unknown as Parameters<typeof setUpTemporal>[1];

    const production = testConfig({ NODE_ENV: 'production', TEMPORAL_NAMESPACE: namespace, TEMPORAL_TASK_QUEUE: config.temporal.taskQueue });
    await setUpTemporal(production, logger);
    const warnings = logged.filter((l) => l.level === 'warn');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.msg).toContain('mixroute temporal setup');
    expect(warnings[0]!.obj).toMatchObject({ missingSearchAttributes: attributeNames, missingSchedules: scheduleIds });
    expect(await scheduleIdsIn(namespace)).toEqual([]);
    expect(await customAttributes(namespace)).not.toContain('MixrouteKind');

    // A gateway's or admin server's client in production: the same one warning, nothing made.
    const server = createTemporalClient(production, logger);
    await eventually(() => expect(logged.filter((l) => l.level === 'warn')).toHaveLength(2), { timeoutMs: 15_000, message: "the server's set-up warning" });
    await server.close();
    expect(logged.filter((l) => l.level === 'warn')[1]!.obj).toMatchObject({ missingSchedules: scheduleIds });
    expect(await scheduleIdsIn(namespace)).toEqual([]);

    // The same worker outside production makes them (what `mixroute worker` does against a dev server).
    await setUpTemporal(testConfig({ TEMPORAL_NAMESPACE: namespace, TEMPORAL_TASK_QUEUE: config.temporal.taskQueue }), logger);
    expect(await scheduleIdsIn(namespace)).toEqual([...scheduleIds].sort());
    expect(await customAttributes(namespace)).toEqual(expect.arrayContaining(attributeNames));
  });
});
