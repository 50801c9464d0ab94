import { Client, Connection } from '@temporalio/client';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureSearchAttributes } from '../../src/temporal/namespace';
import { ensureSchedules, productionSchedules, type ScheduleDefinition } from '../../src/temporal/schedules';
import { SEARCH_ATTRIBUTES } from '../../src/temporal/searchAttributes';
import { testConfig } from '../helpers/env';

const config = testConfig();
let connection: Connection;
let client: Client;
beforeAll(async () => {
  connection = await Connection.connect({ address: config.temporal.address! });
  client = new Client({ connection, namespace: config.temporal.namespace });
});
afterAll(() => connection.close());

describe('schedule registration', () => {
  it('creates a schedule once; registering again updates it instead of adding another', async () => {
    const id = `test-schedule-${randomUUID()}`;
    const def: ScheduleDefinition = {
      scheduleId: id,
      workflowType: 'healthProbe',
      workflowId: `health-probe:scheduled-${id}`,
      args: [{ probeId: 'scheduled' }],
      at: { hour: 3, minute: 0 },
      note: 'test',
    };
    expect(await ensureSchedules(client, [def], config.temporal.taskQueue)).toEqual({ created: [id], updated: [] });
    expect(await ensureSchedules(client, [{ ...def, at: { hour: 4, minute: 30 } }], config.temporal.taskQueue)).toEqual({ created: [], updated: [id] });

    const matching = [];
    for await (const s of client.schedule.list()) if (s.scheduleId === id) matching.push(s);
    expect(matching).toHaveLength(1);
    const described = await client.schedule.getHandle(id).describe();
    expect(described.spec.calendars?.[0]).toMatchObject({ hour: [{ start: 4, end: 4, step: 1 }], minute: [{ start: 30, end: 30, step: 1 }] });
    await client.schedule.getHandle(id).delete();
  });

  it('keeps the production schedules\' ids and workflow ids (running deployments find their schedules by them)', () => {
    expect(productionSchedules(config).map((d) => [d.scheduleId, d.workflowType, d.workflowId])).toEqual([
      ['reconcile-daily', 'reconcile', 'reconcile:daily'],
      ['metadata-expiry-daily', 'metadataExpiry', 'metadata-expiry:daily'],
    ]);
  });
});

describe('search attributes', () => {
  it('are all registered on the dev server, and ensuring them again adds nothing', async () => {
    expect(await ensureSearchAttributes(connection, config.temporal.namespace)).toEqual([]);
    const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace: config.temporal.namespace });
    for (const a of SEARCH_ATTRIBUTES) expect(Object.keys(customAttributes ?? {})).toContain(a.name);
  });
});
