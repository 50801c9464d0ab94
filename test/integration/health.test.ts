import { afterAll, describe, expect, it } from 'vitest';
import { createAdminApp } from '../../src/admin/app';
import { systemClock } from '../../src/clock';
import { loadConfig } from '../../src/config';
import { createGatewayApp } from '../../src/gateway/app';
import { createMetricsRegistry, startMetricsServer } from '../../src/http/metrics';
import { checkTemporal, createTemporalClient } from '../../src/temporal/client';
import { freePort } from '../../src/util/ports';
import { createDb } from '../../src/db/knex';
import { silentLogger, testConfig, testDb } from '../helpers/env';
import { serve } from '../helpers/servers';

const config = testConfig();
const db = testDb(config);
const temporal = createTemporalClient(config);
const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups) await c();
  await temporal.close();
  await db.destroy();
});

const realChecks = {
  postgres: async () => void (await db.raw('SELECT 1')),
  temporal: () => checkTemporal(temporal.connection, 2_000),
};

async function start(kind: 'admin' | 'gateway', readiness: typeof realChecks) {
  const app =
    kind === 'admin'
      ? createAdminApp({ db, billing: config.billing, config, clock: systemClock, logger: silentLogger, readiness, readyCheckTimeoutMs: 2_000 })
      : createGatewayApp({ logger: silentLogger, readiness, readyCheckTimeoutMs: 2_000 }).app;
  const s = await serve(app);
  cleanups.push(s.close);
  return s.url;
}

describe.each(['admin', 'gateway'] as const)('%s health', (kind) => {
  it('is healthy and ready with PostgreSQL and Temporal up', async () => {
    const url = await start(kind, realChecks);
    const health = await fetch(`${url}/healthz`);
    expect(health.status).toBe(200);
    const ready = await fetch(`${url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready', checks: { postgres: { status: 'ok' }, temporal: { status: 'ok' } } });
    expect(ready.headers.get('x-request-id')).toBeTruthy();
  });

  it('is alive but not ready when PostgreSQL and Temporal are unreachable, and says which', async () => {
    const deadDb = createDb({ databaseUrl: 'postgres://postgres@127.0.0.1:1/none', poolMax: 1 });
    cleanups.push(() => deadDb.destroy());
    const deadTemporal = createTemporalClient(loadConfig({ TEMPORAL_ADDRESS: `127.0.0.1:${await freePort()}` }));
    cleanups.push(() => deadTemporal.close());
    const url = await start(kind, {
      postgres: async () => void (await deadDb.raw('SELECT 1')),
      temporal: () => checkTemporal(deadTemporal.connection, 1_000),
    });
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    const ready = await fetch(`${url}/readyz`);
    expect(ready.status).toBe(503);
    const body = (await ready.json()) as { status: string; checks: Record<string, { status: string }> };
    expect(body.status).toBe('not_ready');
    expect(body.checks.postgres!.status).toBe('failing');
    expect(body.checks.temporal!.status).toBe('failing');
  });

  it('serves Prometheus metrics on the metrics listener, not on the public port', async () => {
    const url = await start(kind, realChecks);
    expect((await fetch(`${url}/metrics`)).status).toBe(404);
    const metrics = await startMetricsServer(createMetricsRegistry(kind), 0, '127.0.0.1');
    cleanups.push(metrics.close);
    const res = await fetch(metrics.url);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain(`process_cpu_seconds_total{service="${kind}"}`);
  });
});

describe('gateway placeholder routes', () => {
  it('answers unknown /v1 paths in OpenAI error shape, not HTML', async () => {
    const url = await start('gateway', realChecks);
    const res = await fetch(`${url}/v1/does-not-exist`, { method: 'POST' });
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toContain('application/json');
    const body = await res.json();
    expect(body).toEqual({ error: { message: expect.any(String), type: 'invalid_request_error', param: null, code: 'unknown_url' } });
    expect(res.headers.get('x-request-id')).toMatch(/^req-/);
  });
});

describe('Temporal client', () => {
  it('closes a Temporal client whose probe is still retrying without crashing the process', async () => {
    const dead = createTemporalClient(loadConfig({ TEMPORAL_ADDRESS: `127.0.0.1:${await freePort()}` }));
    const uncaught: unknown[] = [];
    const onUncaught = (err: unknown) => uncaught.push(err);
    process.on('uncaughtException', onUncaught);
    try {
      await expect(checkTemporal(dead.connection, 500)).rejects.toThrow();
      await dead.close();
      // Longer than the retry the probe could have had pending when the client closed: a
      // retry on a closed channel throws from its timer. This sleep proves an absence, and
      // nothing signals that no retry is left, so it stays a fixed wait.
      await new Promise((r) => setTimeout(r, 3_000));
      expect(uncaught).toEqual([]);
    } finally {
      process.off('uncaughtException', onUncaught);
    }
  });
});
