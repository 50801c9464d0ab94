import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminApp } from '../../src/admin/app';
import { startAdminServer } from '../../src/admin/server';
import { systemClock } from '../../src/clock';
import { createDb } from '../../src/db/knex';
import { createGatewayApp } from '../../src/gateway/app';
import { silentLogger, testConfig, testDb } from '../helpers/env';
import { startTestGateway } from '../helpers/gateway';
import { serve } from '../helpers/servers';
import { staffService } from '../../src/staff/staff.service';

/**
 * Attacks on the servers' own surface (issue 17, item 7), by a client with no
 * token: make the admin server parse large or malformed bodies before it knows
 * who is asking; read traffic and capacity from /metrics on the public port;
 * learn internal host names and users from /readyz error texts.
 */
const config = testConfig();
const db = testDb(config);
let admin: { url: string; close: () => Promise<void> };
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  admin = await serve(createAdminApp({ db, billing: config.billing, config, clock: systemClock, logger: silentLogger, readiness: {}, readyCheckTimeoutMs: 1000 }));
});
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  await admin?.close();
  await db.destroy();
});

const send = (path: string, body: string | Buffer, contentType: string, token?: string) =>
  fetch(admin.url + path, {
    method: 'POST',
    headers: { 'content-type': contentType, ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body,
  }).then(async (res) => ({ status: res.status, body: (await res.json()) as { detail: string } }));

describe('request bodies on the admin API', () => {
  it('are not parsed before the token is checked: malformed JSON without a token is a 401', async () => {
    const res = await send('/billing/accounts', '{"name": "x",', 'application/json');
    expect(res.status).toBe(401);
  });

  it('are not read before the token is checked: a body over the limit without a token is a 401, not a 413', async () => {
    const res = await send('/billing/accounts', Buffer.alloc(2 * 1024 * 1024, 'x'), 'application/json');
    expect(res.status).toBe(401);
    // A CSV body in a charset the parser refuses: refused for the token, not for the charset.
    const csv = await send('/billing/provider-statements?provider=x', 'day,model\n', 'text/csv; charset=x-made-up');
    expect(csv.status).toBe(401);
  });

  it('are not parsed for a role the route does not admit (403), and are for one it does', async () => {
    const compliance = (await staffService({ db }).createStaffToken({ role: 'compliance' })).token;
    expect((await send('/billing/accounts', '{"name": "x",', 'application/json', compliance)).status).toBe(403);
    const billing = (await staffService({ db }).createStaffToken({ role: 'billing' })).token;
    const parsed = await send('/billing/accounts', '{"name": "x",', 'application/json', billing);
    expect(parsed.status).toBe(400);
    expect(parsed.body.detail).toContain('not valid JSON');
  });
});

describe('/metrics', () => {
  it('is not served on the public ports, only on the metrics listener bound to loopback', async () => {
    const adminServer = await startAdminServer(testConfig({ ADMIN_PORT: '0', HOST: '127.0.0.1' }));
    cleanups.push(() => adminServer.stop());
    const gw = await startTestGateway({}, config);
    cleanups.push(() => gw.stop());
    for (const [name, server, service] of [['admin', adminServer, 'admin'], ['gateway', gw, 'gateway']] as const) {
      const pub = await fetch(`${server.url}/metrics`);
      expect(pub.status, name).toBe(404);
      expect(await pub.text()).not.toContain('process_cpu_seconds_total');
      expect(new URL(server.metricsUrl).hostname, name).toBe('127.0.0.1');
      expect(new URL(server.metricsUrl).port, name).not.toBe(new URL(server.url).port);
      const metrics = await fetch(server.metricsUrl);
      expect(metrics.status, name).toBe(200);
      expect(await metrics.text()).toContain(`process_cpu_seconds_total{service="${service}"}`);
    }
  });
});

describe('/readyz', () => {
  it("names the failing check but not the dependency's error text", async () => {
    const deadDb = createDb({ databaseUrl: 'postgres://secret_user:hunter2@127.0.0.1:1/internal_db', poolMax: 1 });
    cleanups.push(() => deadDb.destroy());
    const readiness = {
      postgres: async () => void (await deadDb.raw('SELECT 1')),
      temporal: async () => {
        throw new Error('14 UNAVAILABLE: No connection established to temporal-frontend.prod.internal:7233 (tls: certificate for ops@corp)');
      },
      routing: async () => undefined,
    };
    const apps = {
      admin: createAdminApp({ db, billing: config.billing, config, clock: systemClock, logger: silentLogger, readiness, readyCheckTimeoutMs: 1000 }),
      gateway: createGatewayApp({ logger: silentLogger, readiness, readyCheckTimeoutMs: 1000 }).app,
    };
    for (const [name, app] of Object.entries(apps)) {
      const s = await serve(app);
      cleanups.push(s.close);
      const res = await fetch(`${s.url}/readyz`);
      expect(res.status, name).toBe(503);
      const text = await res.text();
      expect(JSON.parse(text), name).toEqual({
        status: 'not_ready',
        checks: { postgres: { status: 'failing' }, temporal: { status: 'failing' }, routing: { status: 'ok' } },
      });
      for (const leak of ['ECONNREFUSED', '127.0.0.1', 'temporal-frontend', 'prod.internal', 'ops@corp']) expect(text, name).not.toContain(leak);
    }
  });
});
