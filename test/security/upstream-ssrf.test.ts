import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminApp } from '../../src/admin/app';
import { systemClock } from '../../src/clock';
import { silentLogger, testConfig, testDb } from '../helpers/env';
import { startFakeUpstream, type FakeUpstream } from '../helpers/fakeUpstream';
import { createCustomer, startTestGateway } from '../helpers/gateway';
import { serve } from '../helpers/servers';
import { staffService } from '../../src/staff/staff.service';

/**
 * Attack (issue 17, item 1): a provider's base URL pointing inside the network
 * (loopback, private ranges, the cloud metadata address) turns the gateway into
 * a request forwarder to internal services, with customers' prompts and a
 * credential attached. The gateway checks the address it actually connects to,
 * after DNS, against UPSTREAM_ALLOWED_HOSTS; the fake provider here stands in
 * for an internal service on loopback.
 */
const config = testConfig({ UPSTREAM_ALLOWED_HOSTS: '*' });
const db = testDb(config);
let upstream: FakeUpstream;
// Allows any public address, and nothing non-public: the production default.
let gw: Awaited<ReturnType<typeof startTestGateway>>;
// Names `localhost` only.
let gwNamed: Awaited<ReturnType<typeof startTestGateway>>;

beforeAll(async () => {
  upstream = await startFakeUpstream();
  gw = await startTestGateway({ UPSTREAM_ALLOWED_HOSTS: '*' }, config);
  gwNamed = await startTestGateway({ UPSTREAM_ALLOWED_HOSTS: 'localhost' }, config);
});
afterAll(async () => {
  await gw?.stop();
  await gwNamed?.stop();
  await upstream?.close();
  await db.destroy();
});

const port = () => new URL(upstream.url).port;

async function completion(gateway: typeof gw, baseUrl: string) {
  // The row as an earlier admin API (or the database directly) would have stored it.
  const c = await createCustomer(db, baseUrl);
  await gateway.routing.refresh();
  const res = await fetch(`${gateway.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${c.key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: c.model, messages: [{ role: 'user', content: 'read http://169.254.169.254/' }], max_tokens: 8 }),
  });
  return { status: res.status, text: await res.text() };
}

describe('a provider on a non-public address', () => {
  for (const host of ['127.0.0.1', 'localhost', '[::ffff:127.0.0.1]', '127.1.2.3']) {
    it(`is refused at connect time: ${host}`, async () => {
      const before = upstream.requests.length;
      const res = await completion(gw, `http://${host}:${port()}/v1`);
      expect(res.status).toBe(502);
      const body = JSON.parse(res.text);
      expect(body.error).toMatchObject({ type: 'upstream_error', code: 'upstream_address_not_allowed' });
      // Nothing about the target leaks back to the client.
      expect(res.text).not.toContain(port());
      expect(res.text).not.toContain('127.');
      expect(upstream.requests.length).toBe(before);
    });
  }

  it('is reached when the allowlist names it (here by host name, checked against the URL host)', async () => {
    const before = upstream.requests.length;
    expect((await completion(gwNamed, `http://localhost:${port()}/v1`)).status).toBe(200);
    expect(upstream.requests.length).toBe(before + 1);
    // The name is allowed, not the address behind it.
    const direct = await completion(gwNamed, `http://127.0.0.1:${port()}/v1`);
    expect(direct.status).toBe(502);
    expect(upstream.requests.length).toBe(before + 1);
  });
});

describe('the admin API', () => {
  let admin: { url: string; close: () => Promise<void> };
  let token: string;
  beforeAll(async () => {
    admin = await serve(createAdminApp({ db, billing: config.billing, config, clock: systemClock, logger: silentLogger, readiness: {}, readyCheckTimeoutMs: 1000 }));
    token = (await staffService({ db }).createStaffToken({ role: 'admin' })).token;
  });
  afterAll(() => admin?.close());

  it('refuses a provider whose base URL is a literal non-public address', async () => {
    const targets = [
      'http://169.254.169.254/latest/meta-data',
      'http://10.0.0.5:8080/v1',
      'http://192.168.1.1/v1',
      'http://[::1]:8080/v1',
      'http://[fd00::5]/v1',
      'http://0x7f000001/v1',
      'http://100.64.0.1/v1',
      'http://0.0.0.0:5432/v1',
    ];
    for (const [i, baseUrl] of targets.entries()) {
      const res = await fetch(`${admin.url}/billing/providers`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name: `internal-${i}`, baseUrl }),
      });
      expect(res.status, baseUrl).toBe(400);
      expect(res.headers.get('content-type')).toContain('application/problem+json');
      expect(((await res.json()) as { errors: { field: string }[] }).errors[0]!.field).toBe('baseUrl');
    }
    expect(await db('providers').where('name', 'like', 'internal-%').first()).toBeUndefined();
  });
});
