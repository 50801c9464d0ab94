import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accountsService } from '../../src/accounts/accounts.service';
import { systemClock } from '../../src/clock';
import { guardedConnector } from '../../src/gateway/upstreamAddress';
import { upstreamAddressPolicy } from '../../src/shared/upstreamAddressPolicy';
import { createWebhookSender } from '../../src/webhooks/sender';
import { webhookDeliveryService, webhooksService } from '../../src/webhooks/webhooks.service';
import { MAX_ENDPOINTS_PER_ACCOUNT } from '../../src/webhooks/webhooks.rules';
import { testConfig, testDb } from '../helpers/env';
import { serve } from '../helpers/servers';
import { startTestGateway } from '../helpers/gateway';

/**
 * Attacks on webhook endpoints (issue 22). An endpoint URL is customer input
 * that MixRoute's workers then POST to, so it is a server-side request
 * forgery vector exactly like a provider's base URL: loopback, private,
 * link-local and the cloud metadata address are refused, at registration for
 * literal addresses and at every connection after DNS, unless
 * WEBHOOK_ALLOWED_HOSTS names them. Inputs are bounded, a receiver cannot make
 * a worker read an endless answer or wait forever, and one account cannot see
 * or act on another's endpoints and deliveries.
 */
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mixroute-webhook-sec-'));
// The production default: any public address, nothing non-public.
const config = testConfig({ DATA_DIR: dataDir, WEBHOOK_ALLOWED_HOSTS: '*', WEBHOOK_TIMEOUT_MS: '1000' });
// A deployment that names loopback (the tests' receivers live there).
const allowing = testConfig({ DATA_DIR: dataDir, WEBHOOK_ALLOWED_HOSTS: '127.0.0.1,localhost', WEBHOOK_TIMEOUT_MS: '1000' });
const db = testDb(config);
const accounts = accountsService({ db, clock: systemClock });
const strict = webhooksService({ db, clock: systemClock, config });
const lenient = webhooksService({ db, clock: systemClock, config: allowing });

function sender(hosts: readonly string[]) {
  return createWebhookSender({ connect: guardedConnector(upstreamAddressPolicy(hosts), { timeout: 1000 }), timeoutMs: 1000 });
}

let accountId: string;
let otherAccountId: string;
let hits = 0;
let receiver: Awaited<ReturnType<typeof serve>>;

beforeAll(async () => {
  accountId = (await accounts.createAccount({ name: 'Webhook attacker target' })).id;
  otherAccountId = (await accounts.createAccount({ name: 'Webhook other account' })).id;
  receiver = await serve((req, res) => {
    hits++;
    if (req.url === '/endless') {
      res.writeHead(200);
      const chunk = Buffer.alloc(64 * 1024, 'x');
      const pump = () => {
        while (res.write(chunk));
      };
      res.on('drain', pump);
      pump();
      return;
    }
    if (req.url === '/silent') return; // never answers
    res.end('ok');
  });
});
afterAll(async () => {
  receiver.server.closeAllConnections();
  await receiver?.close();
  await db.destroy();
});

/**
 * An event of `accountId` and its delivery to the endpoint, marked started in
 * the same transaction, so a dispatcher of another test file (same database)
 * never starts a workflow for it: this file drives attempts itself.
 */
async function eventOutsideDispatch(endpointId: string, type: string, data: Record<string, unknown>, account = accountId): Promise<{ id: string }> {
  return db.transaction(async (trx) => {
    const [event] = await trx('account_events').insert({ account_id: account, type, data: JSON.stringify(data), dedupe_key: `sec-webhook:${endpointId}` }).returning('id');
    const [delivery] = await trx('webhook_deliveries')
      .where({ endpoint_id: endpointId, event_id: (event as { id: string }).id })
      .update({ started_at: new Date() })
      .returning('id');
    return delivery as { id: string };
  });
}

const refusedHosts = [
  'http://127.0.0.1/hook',
  'http://127.8.9.10:8080/hook',
  'http://169.254.169.254/latest/meta-data/',
  'http://10.0.0.7/hook',
  'http://172.16.3.4/hook',
  'http://192.168.1.1/hook',
  'http://100.64.0.1/hook',
  'http://[::1]/hook',
  'http://[::ffff:127.0.0.1]/hook',
  'http://[fd00::1]/hook',
  'http://0.0.0.0/hook',
  'http://localhost:9000/hook',
  'http://api.localhost/hook',
];

describe('endpoint URLs', () => {
  it.each(refusedHosts)('refuses %s unless WEBHOOK_ALLOWED_HOSTS names it', async (url) => {
    await expect(strict.registerEndpoint({ accountId, url, events: ['balance.low'] })).rejects.toMatchObject({ code: 'invalid_input', fieldErrors: [expect.objectContaining({ field: 'url' })] });
    expect(await db('webhook_endpoints').where({ url })).toHaveLength(0);
  });

  it('accepts a named loopback address when the deployment allows it', async () => {
    const ep = await lenient.registerEndpoint({ accountId, url: 'http://127.0.0.1:9/hook', events: ['balance.low'] });
    expect(ep.status).toBe('active');
    await lenient.deleteEndpoint({ id: ep.id });
  });

  it.each([
    ['a non-http scheme', 'file:///etc/passwd'],
    ['gopher', 'gopher://example.com/'],
    ['credentials', 'https://user:pass@example.com/hook'],
    ['a fragment', 'https://example.com/hook#x'],
    ['no URL at all', 'not a url'],
    ['an oversize URL', `https://example.com/${'a'.repeat(3000)}`],
  ])('refuses %s', async (_what, url) => {
    await expect(strict.registerEndpoint({ accountId, url, events: ['balance.low'] })).rejects.toMatchObject({ code: 'invalid_input' });
  });

  it('refuses empty, oversize, repeated and unknown event lists', async () => {
    const url = 'https://hooks.example.com/a';
    for (const events of [[], ['balance.low', 'balance.low'], ['balance.low', 'account.deleted'], Array.from({ length: 9 }, () => 'balance.low'), 'balance.low', [{ $ne: 1 }]]) {
      await expect(strict.registerEndpoint({ accountId, url, events })).rejects.toMatchObject({ code: 'invalid_input' });
    }
    await expect(strict.registerEndpoint({ accountId, url, events: ['balance.low'], secret: 'whsec_mine' })).rejects.toMatchObject({ code: 'invalid_input' });
  });

  it(`keeps an account to ${MAX_ENDPOINTS_PER_ACCOUNT} endpoints, also when registrations race`, async () => {
    const acct = (await accounts.createAccount({ name: 'Webhook many endpoints' })).id;
    const results = await Promise.allSettled(
      Array.from({ length: MAX_ENDPOINTS_PER_ACCOUNT + 5 }, (_, i) => strict.registerEndpoint({ accountId: acct, url: `https://hooks.example.com/${i}`, events: ['balance.low'] })),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(MAX_ENDPOINTS_PER_ACCOUNT);
    expect(await db('webhook_endpoints').where({ account_id: acct })).toHaveLength(MAX_ENDPOINTS_PER_ACCOUNT);
  });
});

describe('where deliveries connect', () => {
  it('refuses a loopback address at connect time, after DNS, when the policy does not name it', async () => {
    hits = 0;
    const port = new URL(receiver.url).port;
    for (const url of [`http://127.0.0.1:${port}/hook`, `http://localhost:${port}/hook`]) {
      expect(await sender(['*']).post(url, {}, '{}')).toEqual({ error: 'address_not_allowed' });
    }
    expect(hits).toBe(0);
    expect(await sender(['127.0.0.1']).post(`http://127.0.0.1:${port}/hook`, {}, '{}')).toEqual({ status: 200 });
    expect(hits).toBe(1);
  });

  it('records a refused delivery as a failed attempt without reaching the address', async () => {
    hits = 0;
    // Registered while loopback was allowed; the workers' policy no longer names it.
    const ep = await lenient.registerEndpoint({ accountId, url: `${receiver.url}/hook`, events: ['balance.low'] });
    const delivery = await eventOutsideDispatch(ep.id, 'balance.low', { balance: '1.00' });
    const worker = webhookDeliveryService({ db, clock: systemClock, config, sender: sender(config.webhooks.allowedHosts), mail: config.mail });
    const outcome = await worker.attempt({ deliveryId: delivery.id, generation: 0, attempt: 1, firstAttemptMs: Date.now() });
    expect(outcome).toMatchObject({ outcome: 'retry', status: null, error: 'address_not_allowed' });
    expect(hits).toBe(0);
    expect(await strict.getDelivery({ id: delivery.id })).toMatchObject({ attempts: 1, lastError: 'address_not_allowed', lastResponseCode: null, status: 'pending' });
  });

  it('reads at most a bounded part of an endless answer', async () => {
    expect(await sender(['127.0.0.1']).post(`${receiver.url}/endless`, {}, '{}')).toEqual({ status: 200 });
  });

  it('gives up on a receiver that never answers', async () => {
    expect(await sender(['127.0.0.1']).post(`${receiver.url}/silent`, {}, '{}')).toEqual({ error: 'timeout' });
  });
});

describe('another account', () => {
  it('cannot see, change, delete or redeliver what is not its own', async () => {
    const ep = await strict.registerEndpoint({ accountId, url: 'https://hooks.example.com/mine', events: ['topup.succeeded'] });
    const delivery = await eventOutsideDispatch(ep.id, 'topup.succeeded', { amount: '5.00' });
    await db('webhook_deliveries').where({ id: delivery.id }).update({ status: 'failed' });

    const scope = { accountId: otherAccountId };
    await expect(strict.getEndpoint({ id: ep.id, ...scope })).rejects.toMatchObject({ code: 'not_found' });
    await expect(strict.disableEndpoint({ id: ep.id, ...scope }, 'account')).rejects.toMatchObject({ code: 'not_found' });
    await expect(strict.enableEndpoint({ id: ep.id, ...scope })).rejects.toMatchObject({ code: 'not_found' });
    await expect(strict.deleteEndpoint({ id: ep.id, ...scope })).rejects.toMatchObject({ code: 'not_found' });
    await expect(strict.listDeliveries({ endpointId: ep.id, ...scope })).rejects.toMatchObject({ code: 'not_found' });
    await expect(strict.getDelivery({ id: delivery.id, ...scope })).rejects.toMatchObject({ code: 'not_found' });
    await expect(strict.redeliver({ id: delivery.id, ...scope })).rejects.toMatchObject({ code: 'not_found' });
    expect((await strict.listEndpoints(scope)).map((e) => e.id)).not.toContain(ep.id);
    expect((await strict.listDeliveries(scope)).deliveries).toHaveLength(0);

    // Nothing changed.
    expect(await strict.getEndpoint({ id: ep.id, accountId })).toMatchObject({ status: 'active' });
    expect(await strict.getDelivery({ id: delivery.id, accountId })).toMatchObject({ status: 'failed', redeliveries: 0 });
  });

  it('cannot forge a page cursor into a crash', async () => {
    for (const before of ['%%%', Buffer.from('x|y').toString('base64url'), 'a'.repeat(500)]) {
      await expect(strict.listDeliveries({ accountId, before })).rejects.toMatchObject({ code: 'invalid_input' });
    }
  });
});

describe('/v1/webhooks on the gateway', () => {
  let gw: Awaited<ReturnType<typeof startTestGateway>>;
  let mine: { accountId: string; management: string; inference: string };
  let theirs: { accountId: string; management: string };

  beforeAll(async () => {
    gw = await startTestGateway({ WEBHOOK_ALLOWED_HOSTS: '*' }, config);
    const a = (await accounts.createAccount({ name: 'Webhook API mine' })).id;
    const b = (await accounts.createAccount({ name: 'Webhook API theirs' })).id;
    mine = {
      accountId: a,
      management: (await accounts.createKey({ accountId: a, kind: 'management' })).key,
      inference: (await accounts.createKey({ accountId: a })).key,
    };
    theirs = { accountId: b, management: (await accounts.createKey({ accountId: b, kind: 'management' })).key };
  });
  afterAll(async () => {
    await gw?.stop();
  });

  const call = async (key: string | null, method: string, p: string, body?: unknown) => {
    const res = await fetch(`${gw.url}${p}`, {
      method,
      headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    });
    return { status: res.status, json: (await res.json()) as any };
  };

  it('needs a key, and a management key', async () => {
    expect((await call(null, 'GET', '/v1/webhooks')).status).toBe(401);
    const r = await call(mine.inference, 'POST', '/v1/webhooks', { url: 'https://hooks.example.com/i', events: ['balance.low'] });
    expect(r.status).toBe(403);
    expect(r.json.error).toMatchObject({ type: 'permission_error', code: 'management_key_required' });
    expect(await db('webhook_endpoints').where({ account_id: mine.accountId })).toHaveLength(0);
  });

  it('registers with a secret shown once, refuses internal addresses and bad input in OpenAI error JSON', async () => {
    const created = await call(mine.management, 'POST', '/v1/webhooks', { url: 'https://hooks.example.com/api', events: ['balance.low', 'topup.succeeded'] });
    expect(created.status).toBe(201);
    expect(created.json.secret).toMatch(/^whsec_/);
    expect(created.json.data).toMatchObject({ url: 'https://hooks.example.com/api', status: 'active', events: ['balance.low', 'topup.succeeded'] });
    const listed = await call(mine.management, 'GET', '/v1/webhooks');
    expect(listed.json.data.map((e: { id: string }) => e.id)).toEqual([created.json.data.id]);
    expect(JSON.stringify(listed.json)).not.toContain(created.json.secret.slice(6));

    for (const url of ['http://169.254.169.254/latest/meta-data/', 'http://127.0.0.1:8081/billing/accounts', 'http://[::1]/']) {
      const r = await call(mine.management, 'POST', '/v1/webhooks', { url, events: ['balance.low'] });
      expect(r.status).toBe(400);
      expect(r.json.error).toMatchObject({ type: 'invalid_request_error', param: 'url' });
    }
    expect((await call(mine.management, 'POST', '/v1/webhooks', { url: 'https://hooks.example.com/x', events: ['nope'] })).status).toBe(400);
    expect((await call(mine.management, 'POST', '/v1/webhooks', '{not json')).json.error.code).toBe('invalid_json');
    expect((await call(mine.management, 'POST', '/v1/webhooks', { url: `https://hooks.example.com/${'a'.repeat(20_000)}`, events: ['balance.low'] })).status).toBe(413);
    expect((await call(mine.management, 'GET', '/v1/webhooks/deliveries?limit=100000')).status).toBe(400);
    expect((await call(mine.management, 'GET', '/v1/webhooks/deliveries?account_id=' + theirs.accountId)).status).toBe(400);
  });

  it("gives another account's management key nothing", async () => {
    const ep = (await call(mine.management, 'POST', '/v1/webhooks', { url: 'https://hooks.example.com/own', events: ['topup.succeeded'] })).json.data;
    const delivery = await eventOutsideDispatch(ep.id, 'topup.succeeded', { amount: '7.00' }, mine.accountId);
    await db('webhook_deliveries').where({ id: delivery.id }).update({ status: 'succeeded' });

    for (const [method, p] of [
      ['GET', `/v1/webhooks/${ep.id}`],
      ['POST', `/v1/webhooks/${ep.id}/disable`],
      ['POST', `/v1/webhooks/${ep.id}/enable`],
      ['DELETE', `/v1/webhooks/${ep.id}`],
      ['GET', `/v1/webhooks/deliveries/${delivery.id}`],
      ['POST', `/v1/webhooks/deliveries/${delivery.id}/redeliver`],
      ['GET', `/v1/webhooks/deliveries?endpoint_id=${ep.id}`],
    ] as const) {
      const r = await call(theirs.management, method, p);
      expect(r.status, `${method} ${p}`).toBe(404);
      expect(r.json.error.type).toBe('invalid_request_error');
    }
    expect((await call(theirs.management, 'GET', '/v1/webhooks')).json.data).toEqual([]);
    expect((await call(theirs.management, 'GET', '/v1/webhooks/deliveries')).json.data).toEqual([]);
    expect(await strict.getEndpoint({ id: ep.id })).toMatchObject({ status: 'active' });
    expect(await strict.getDelivery({ id: delivery.id })).toMatchObject({ status: 'succeeded', redeliveries: 0 });

    // The owner sees its log and can redeliver.
    const log = await call(mine.management, 'GET', `/v1/webhooks/deliveries?endpoint_id=${ep.id}`);
    expect(log.json.data).toEqual([expect.objectContaining({ id: delivery.id, status: 'succeeded', event_type: 'topup.succeeded' })]);
    const again = await call(mine.management, 'POST', `/v1/webhooks/deliveries/${delivery.id}/redeliver`);
    expect(again.json.data).toMatchObject({ status: 'pending', redeliveries: 1 });
    // This file starts no workflows: keep other files' dispatchers off the redelivery.
    await db('webhook_deliveries').where({ id: delivery.id }).update({ started_at: new Date() });
  });
});
