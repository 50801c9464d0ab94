import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accountsService } from '../../src/accounts/accounts.service';
import { ledgerService } from '../../src/ledger/ledger.service';
import { createAdminApp } from '../../src/admin/app';
import { staffService } from '../../src/staff/staff.service';
import { serve } from '../helpers/servers';
import { ownDatabaseUrl } from '../helpers/ownDatabase';
import { dropDatabase, ensureDatabase } from '../../src/db/database';
import { migrateLatest } from '../../src/db/migrate';
import { systemClock } from '../../src/clock';
import { workflowIds } from '../../src/temporal/conventions';
import { ensureWebhookDispatcher } from '../../src/webhooks/dispatcher';
import { webhooksService } from '../../src/webhooks/webhooks.service';
import { eventually } from '../helpers/eventually';
import { runCli, runCliJson } from '../helpers/cli';
import { silentLogger, testConfig, testDb, testEnv } from '../helpers/env';
import { testActivities, workflowBundle } from '../helpers/worker';

/**
 * Signed delivery end to end (issue 22): an account event inserted into
 * account_events reaches a local receiver through the dispatcher and a
 * `webhook-delivery` workflow on a real worker, signed as Standard Webhooks
 * says, and verified here with the same library; a receiver that is down
 * (connections refused, then 500s) gets it once it is back; an endpoint that
 * keeps failing is disabled and the account emailed; redelivery; the log.
 * Retry waits are shortened through the config (the production bound is
 * three days).
 */
const { historyFromJSON, historyToJSON } = createRequire(import.meta.url)(
  '@temporalio/common/lib/proto-utils',
) as typeof import('@temporalio/common/lib/proto-utils');
const HISTORY = fileURLToPath(new URL('../replay/histories/webhookDelivery.json', import.meta.url));
const DISPATCHER_HISTORY = fileURLToPath(new URL('../replay/histories/webhookDispatcher.json', import.meta.url));

// A database of its own: every worker started by other files (`mixroute worker`) runs a dispatcher
// of its own task queue, which would otherwise start this file's deliveries under its own settings.
const config = testConfig({
  DATABASE_URL: ownDatabaseUrl('webhooks'),
  DATA_DIR: fs.mkdtempSync(path.join(os.tmpdir(), 'mixroute-webhooks-')),
  WEBHOOK_ALLOWED_HOSTS: '127.0.0.1',
  WEBHOOK_RETRY_INITIAL_MS: '200',
  WEBHOOK_RETRY_MAX_INTERVAL_MS: '1000',
  WEBHOOK_DISPATCH_POLL_MS: '100',
  WEBHOOK_DISABLE_AFTER_FAILURES: '4',
  WEBHOOK_DISABLE_MIN_FAILING_S: '0',
  WEBHOOK_TIMEOUT_MS: '3000',
});
const db = testDb(config);
const accounts = accountsService({ db, clock: systemClock });
const webhooks = webhooksService({ db, clock: systemClock, config });

interface Received {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** The local receiver: answers per path with the status set for it; `down()` closes the port (connections refused). */
class Receiver {
  received: Received[] = [];
  status = new Map<string, number>();
  private server: http.Server | null = null;
  port = 0;

  async up(): Promise<void> {
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.received.push({ path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
        res.statusCode = this.status.get(req.url ?? '') ?? 200;
        res.end('a body that must never be stored');
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  async down(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  url(p: string): string {
    return `http://127.0.0.1:${this.port}${p}`;
  }

  at(p: string): Received[] {
    return this.received.filter((r) => r.path === p);
  }
}

const receiver = new Receiver();
let connection: NativeConnection;
let clientConnection: Connection;
let client: Client;
let worker: Worker;
let running: Promise<void>;

beforeAll(async () => {
  await ensureDatabase(config.databaseUrl);
  await migrateLatest(db);
  await receiver.up();
  connection = await NativeConnection.connect({ address: config.temporal.address! });
  worker = await Worker.create({
    connection,
    namespace: config.temporal.namespace,
    taskQueue: config.temporal.taskQueue,
    workflowBundle: await workflowBundle(),
    activities: testActivities(config, db),
  });
  running = worker.run();
  clientConnection = await Connection.connect({ address: config.temporal.address! });
  client = new Client({ connection: clientConnection, namespace: config.temporal.namespace });
  await ensureWebhookDispatcher(client, config.temporal.taskQueue, { roundMs: 2_000 });
});

afterAll(async () => {
  await client?.workflow.getHandle(workflowIds.webhookDispatcher(config.temporal.taskQueue)).terminate('test done').catch(() => undefined);
  worker?.shutdown();
  await running;
  await connection?.close();
  await clientConnection?.close();
  await receiver.down();
  await db.destroy();
  await dropDatabase(config.databaseUrl);
});

let seq = 0;
async function newAccount(billingEmail?: string) {
  return accounts.createAccount({ name: `Webhooks ${++seq}`, ...(billingEmail ? { billingEmail } : {}) });
}

async function insertEvent(accountId: string, type: string, data: Record<string, unknown>): Promise<string> {
  const [row] = await db('account_events')
    .insert({ account_id: accountId, type, data: JSON.stringify(data), dedupe_key: `test:${type}:${accountId}:${++seq}` })
    .returning('id');
  return (row as { id: string }).id;
}

async function deliveryOf(endpointId: string, eventId: string) {
  const row = await db('webhook_deliveries').where({ endpoint_id: endpointId, event_id: eventId }).first();
  return row ? webhooks.getDelivery({ id: row.id }) : undefined;
}

function verified(secret: string, r: Received) {
  return new Webhook(secret).verify(r.body, {
    'webhook-id': String(r.headers['webhook-id']),
    'webhook-timestamp': String(r.headers['webhook-timestamp']),
    'webhook-signature': String(r.headers['webhook-signature']),
  }) as { type: string; timestamp: string; data: Record<string, unknown> };
}

describe('signed delivery', () => {
  let secret: string;
  let endpointId: string;
  let accountId: string;
  let eventId: string;

  it('delivers a subscribed event to the receiver, signed, and logs status, attempts and code only', async () => {
    accountId = (await newAccount()).id;
    const ep = await webhooks.registerEndpoint({ accountId, url: receiver.url('/ok'), events: ['topup.succeeded', 'balance.low'] });
    secret = ep.secret;
    endpointId = ep.id;
    expect(secret).toMatch(/^whsec_/);
    expect(ep.secretPrefix).toBe(secret.slice(0, ep.secretPrefix.length));
    // The secret is shown once: no later read returns it.
    expect(JSON.stringify(await webhooks.getEndpoint({ id: ep.id }))).not.toContain(secret.slice(6));
    expect(JSON.stringify(await webhooks.listEndpoints({ accountId }))).not.toContain(secret.slice(6));

    eventId = await insertEvent(accountId, 'topup.succeeded', { payment_id: 'pay_1', amount: '25.00', currency: 'USD' });
    const unsubscribed = await insertEvent(accountId, 'invoice.finalized', { invoice_id: 'inv_1' });

    await eventually(() => expect(receiver.at('/ok')).toHaveLength(1), { timeoutMs: 20_000, message: 'the event to arrive' });
    const got = receiver.at('/ok')[0]!;
    expect(got.headers['webhook-id']).toBe(eventId);
    const payload = verified(secret, got);
    expect(payload.type).toBe('topup.succeeded');
    expect(payload.data).toEqual({ payment_id: 'pay_1', amount: '25.00', currency: 'USD', eventId, accountId });
    expect(Number.isNaN(Date.parse(payload.timestamp))).toBe(false);
    // A tampered body does not verify.
    expect(() => verified(secret, { ...got, body: got.body.replace('25.00', '2500.00') })).toThrow();

    await eventually(async () => expect((await deliveryOf(endpointId, eventId))?.status).toBe('succeeded'), { timeoutMs: 10_000 });
    const d = (await deliveryOf(endpointId, eventId))!;
    expect(d).toMatchObject({ attempts: 1, lastResponseCode: 200, lastError: null, eventType: 'topup.succeeded', redeliveries: 0 });
    // Nothing of the receiver's answer is kept.
    const row = await db('webhook_deliveries').where({ id: d.id }).first();
    expect(JSON.stringify(row)).not.toContain('never be stored');
    expect(await db('webhook_deliveries').where({ endpoint_id: endpointId, event_id: unsubscribed })).toHaveLength(0);

    const log = await webhooks.listDeliveries({ accountId });
    expect(log.deliveries.map((x) => x.id)).toEqual([d.id]);
    expect(Object.keys(log.deliveries[0]!).sort()).toEqual(
      ['attempts', 'createdAt', 'endpointId', 'eventId', 'eventType', 'id', 'lastAttemptAt', 'lastError', 'lastResponseCode', 'nextAttemptAt', 'redeliveries', 'status'].sort(),
    );
  });

  it('redelivers a finished delivery once per request, as a new run with the same message id', async () => {
    const d = (await deliveryOf(endpointId, eventId))!;
    const first = await webhooks.redeliver({ id: d.id });
    const again = await webhooks.redeliver({ id: d.id });
    expect(first.redeliveries).toBe(1);
    expect(again.redeliveries).toBe(1);

    await eventually(() => expect(receiver.at('/ok')).toHaveLength(2), { timeoutMs: 20_000, message: 'the redelivery to arrive' });
    const second = receiver.at('/ok')[1]!;
    expect(second.headers['webhook-id']).toBe(eventId);
    expect(verified(secret, second).type).toBe('topup.succeeded');
    await eventually(async () => expect(await webhooks.getDelivery({ id: d.id })).toMatchObject({ status: 'succeeded', attempts: 2, redeliveries: 1 }), { timeoutMs: 10_000 });
    const run = await client.workflow.getHandle(workflowIds.webhookDelivery(d.id, 1)).result();
    expect(run).toMatchObject({ status: 'succeeded', attempts: 1 });
  });

  it('a dispatcher round repeated after a crash (started but not marked) sends nothing again', async () => {
    const d = (await deliveryOf(endpointId, eventId))!;
    const before = receiver.at('/ok').length;
    await db('webhook_deliveries').where({ id: d.id }).update({ started_at: null });
    await eventually(async () => expect((await db('webhook_deliveries').where({ id: d.id }).first()).started_at).not.toBeNull(), { timeoutMs: 10_000, message: 'the dispatcher to pass over it' });
    // The round after it: by then any run the first one started has had its attempt.
    const marker = await insertEvent(accountId, 'balance.low', { balance: '1.00' });
    await eventually(async () => expect((await deliveryOf(endpointId, marker))?.status).toBe('succeeded'), { timeoutMs: 20_000 });
    expect(receiver.at('/ok').filter((r) => r.headers['webhook-id'] === eventId)).toHaveLength(before);
    expect(await webhooks.getDelivery({ id: d.id })).toMatchObject({ status: 'succeeded', redeliveries: 1 });
  });

  it('another account cannot read or redeliver it', async () => {
    const other = (await newAccount()).id;
    const d = (await deliveryOf(endpointId, eventId))!;
    await expect(webhooks.redeliver({ id: d.id, accountId: other })).rejects.toMatchObject({ code: 'not_found' });
    await expect(webhooks.getDelivery({ id: d.id, accountId: other })).rejects.toMatchObject({ code: 'not_found' });
    expect((await webhooks.listDeliveries({ accountId: other })).deliveries).toHaveLength(0);
    await expect(webhooks.listDeliveries({ endpointId, accountId: other })).rejects.toMatchObject({ code: 'not_found' });
  });
});

describe('from a real money movement', () => {
  it('a staff top-up (topUp workflow, ledger, account_events) arrives as a signed topup.succeeded', async () => {
    const accountId = (await newAccount()).id;
    const ep = await webhooks.registerEndpoint({ accountId, url: receiver.url('/topups'), events: ['topup.succeeded'] });
    const ledger = ledgerService({ db, billing: config.billing, temporal: { client, taskQueue: config.temporal.taskQueue } });
    await ledger.createTopUp({ accountId, amount: '42.50', reference: `wh-topup-${accountId}` }, 'staff:test');

    await eventually(() => expect(receiver.at('/topups')).toHaveLength(1), { timeoutMs: 20_000, message: 'topup.succeeded to arrive' });
    const payload = verified(ep.secret, receiver.at('/topups')[0]!);
    expect(payload.type).toBe('topup.succeeded');
    expect(payload.data).toMatchObject({ accountId, amount: '42.5' });
    // Ids, amounts and links only.
    expect(JSON.stringify(payload)).not.toMatch(/@|Webhooks \d/);
  });
});

describe('a receiver that was down', () => {
  it('gets the event once it is back, after refused connections and 500s', async () => {
    const accountId = (await newAccount()).id;
    const ep = await webhooks.registerEndpoint({ accountId, url: receiver.url('/flaky'), events: ['balance.low'] });
    receiver.status.set('/flaky', 500);
    await receiver.down();
    const eventId = await insertEvent(accountId, 'balance.low', { balance: '4.50', threshold: '5.00', currency: 'USD' });

    await eventually(async () => expect((await deliveryOf(ep.id, eventId))?.lastError).toBe('connection_failed'), { timeoutMs: 20_000, message: 'a refused attempt' });
    expect((await deliveryOf(ep.id, eventId))!.status).toBe('pending');
    await receiver.up();
    await eventually(async () => expect((await deliveryOf(ep.id, eventId))?.lastResponseCode).toBe(500), { timeoutMs: 20_000, message: 'a 500 attempt' });
    const failing = (await deliveryOf(ep.id, eventId))!;
    expect(failing.status).toBe('pending');
    expect(failing.nextAttemptAt).not.toBeNull();
    receiver.status.set('/flaky', 204);

    await eventually(async () => expect((await deliveryOf(ep.id, eventId))?.status).toBe('succeeded'), { timeoutMs: 20_000, message: 'the delivery to succeed' });
    const done = (await deliveryOf(ep.id, eventId))!;
    expect(done.attempts).toBeGreaterThanOrEqual(3);
    expect(done.lastResponseCode).toBe(204);
    const delivered = receiver.at('/flaky').at(-1)!;
    expect(verified(ep.secret, delivered).data).toMatchObject({ balance: '4.50', eventId });
    // The failures before were a run that the success ended.
    expect((await webhooks.getEndpoint({ id: ep.id })).consecutiveFailures).toBe(0);

    const handle = client.workflow.getHandle(workflowIds.webhookDelivery(done.id, 0));
    expect(await handle.result()).toMatchObject({ status: 'succeeded', lastResponseCode: 204 });
    const history = await handle.fetchHistory();
    await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history, handle.workflowId);
    // Ids and codes only in the history: no URL, no secret, no payload.
    const text = historyToJSON(history);
    expect(text).not.toContain('127.0.0.1');
    expect(text).not.toContain('whsec_');
    expect(text).not.toContain('4.50');
    if (process.env.UPDATE_REPLAY_FIXTURES) fs.writeFileSync(HISTORY, text);
  });

  it('the recorded history replays against today’s workflow code', async () => {
    const history = historyFromJSON(JSON.parse(fs.readFileSync(HISTORY, 'utf8')));
    await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history, 'webhook-delivery-replay');
  });
});

describe('an endpoint that keeps failing', () => {
  it('is disabled after repeated failures, its account emailed, and gets no more deliveries', async () => {
    const email = `ops-${Date.now()}@customer.example`;
    const accountId = (await newAccount(email)).id;
    const ep = await webhooks.registerEndpoint({ accountId, url: receiver.url('/broken'), events: ['balance.depleted', 'balance.recovered'] });
    receiver.status.set('/broken', 503);
    const eventId = await insertEvent(accountId, 'balance.depleted', { balance: '0', currency: 'USD' });

    await eventually(async () => expect((await webhooks.getEndpoint({ id: ep.id })).status).toBe('disabled'), { timeoutMs: 30_000, message: 'the endpoint to be disabled' });
    const endpoint = await webhooks.getEndpoint({ id: ep.id });
    expect(endpoint).toMatchObject({ disabledReason: 'failures', consecutiveFailures: 4 });
    const d = (await deliveryOf(ep.id, eventId))!;
    expect(d).toMatchObject({ status: 'failed', attempts: 4, lastResponseCode: 503, lastError: 'http_503' });
    expect(receiver.at('/broken')).toHaveLength(4);

    await eventually(
      async () => {
        const notice = await db('notification_outbox').where('idempotency_key', 'like', `webhook-endpoint-disabled:${ep.id}:%`);
        expect(notice).toHaveLength(1);
        expect(notice[0]).toMatchObject({ recipient: email, subject: 'MixRoute: a webhook endpoint was disabled' });
        expect(notice[0].sent_at).not.toBeNull();
      },
      { timeoutMs: 10_000, message: 'the disabled-endpoint email to be sent' },
    );
    const mail = fs.readdirSync(config.mail.mailboxDir).map((f) => JSON.parse(fs.readFileSync(path.join(config.mail.mailboxDir, f), 'utf8')) as { to: string; body: string });
    expect(mail.filter((m) => m.to === email && m.body.includes(ep.id))).toHaveLength(1);

    // Disabled: a new event creates no delivery.
    const later = await insertEvent(accountId, 'balance.recovered', { balance: '10.00', currency: 'USD' });
    expect(await deliveryOf(ep.id, later)).toBeUndefined();

    // Enabled again and redelivered by hand, the missed event arrives.
    receiver.status.set('/broken', 200);
    expect((await webhooks.enableEndpoint({ id: ep.id })).status).toBe('active');
    await webhooks.redeliver({ id: d.id });
    await eventually(async () => expect((await deliveryOf(ep.id, eventId))?.status).toBe('succeeded'), { timeoutMs: 20_000, message: 'the redelivery to succeed' });
    expect(verified(ep.secret, receiver.at('/broken').at(-1)!).type).toBe('balance.depleted');
  });
});

describe('staff tools', () => {
  it('the CLI registers an endpoint (secret shown once), lists it, shows the delivery log and redelivers', async () => {
    const env = testEnv(config, { DATA_DIR: config.dataDir, WEBHOOK_ALLOWED_HOSTS: '127.0.0.1' });
    const accountId = (await newAccount()).id;
    const added = await runCliJson(['webhooks', 'add', '--account', accountId, '--url', receiver.url('/cli'), '--events', 'invoice.finalized,credit_note.created'], env);
    expect(added.secret).toMatch(/^whsec_/);
    const listed = await runCliJson(['webhooks', 'list', '--account', accountId], env);
    expect(listed).toEqual([expect.objectContaining({ id: added.id, events: ['invoice.finalized', 'credit_note.created'], status: 'active' })]);
    expect(JSON.stringify(listed)).not.toContain(added.secret.slice(6));

    const eventId = await insertEvent(accountId, 'invoice.finalized', { invoice_id: 'inv_9', total: '12.34', link: 'https://billing.example/invoices/inv_9' });
    // Sealed by the CLI process, opened by the worker: the signature verifies with the secret the CLI printed.
    await eventually(() => expect(receiver.at('/cli')).toHaveLength(1), { timeoutMs: 20_000, message: 'the event to arrive' });
    expect(verified(added.secret, receiver.at('/cli')[0]!).data).toMatchObject({ invoice_id: 'inv_9', total: '12.34', eventId });

    await eventually(async () => expect((await deliveryOf(added.id, eventId))?.status).toBe('succeeded'), { timeoutMs: 10_000 });
    const log = await runCliJson(['webhooks', 'deliveries', '--endpoint', added.id], env);
    expect(log.deliveries).toEqual([expect.objectContaining({ eventId, status: 'succeeded', attempts: 1, lastResponseCode: 200 })]);
    const again = await runCliJson(['webhooks', 'redeliver', log.deliveries[0].id], env);
    expect(again).toMatchObject({ status: 'pending', redeliveries: 1 });
    await eventually(() => expect(receiver.at('/cli')).toHaveLength(2), { timeoutMs: 20_000, message: 'the redelivery to arrive' });

    const refused = await runCli(['webhooks', 'add', '--account', accountId, '--url', 'http://169.254.169.254/', '--events', 'balance.low'], testEnv(config, { DATA_DIR: config.dataDir }));
    expect(refused.code).toBe(2);
    expect(refused.stderr.trim().split('\n')).toHaveLength(1);
    expect(refused.stderr).toContain('url');
  });
});

describe('admin API and console', () => {
  it('billing staff register an endpoint, read the log and redeliver from the console', async () => {
    const admin = await serve(createAdminApp({ db, billing: config.billing, config, clock: systemClock, logger: silentLogger, readiness: {}, readyCheckTimeoutMs: 1000 }));
    try {
      const accountId = (await newAccount()).id;
      const token = (await staffService({ db }).createStaffToken({ role: 'billing' })).token;
      const api = async (method: string, p: string, body?: unknown) => {
        const res = await fetch(admin.url + p, { method, headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { body: JSON.stringify(body) } : {}) });
        return { status: res.status, json: (await res.json()) as any };
      };
      const created = await api('POST', `/billing/accounts/${accountId}/webhooks`, { url: receiver.url('/staff'), events: ['credit_note.created'] });
      expect(created.status).toBe(201);
      expect(created.json.secret).toMatch(/^whsec_/);
      const refused = await api('POST', `/billing/accounts/${accountId}/webhooks`, { url: 'http://169.254.169.254/', events: ['credit_note.created'], accountId: 'x' });
      expect(refused.status).toBe(400);

      const eventId = await insertEvent(accountId, 'credit_note.created', { creditNoteId: 'cn_1', total: '-3.00' });
      await eventually(async () => expect((await deliveryOf(created.json.id, eventId))?.status).toBe('succeeded'), { timeoutMs: 20_000 });
      const log = await api('GET', `/billing/accounts/${accountId}/webhook-deliveries?status=succeeded`);
      expect(log.json.deliveries).toEqual([expect.objectContaining({ eventId, attempts: 1, lastResponseCode: 200 })]);
      expect((await api('GET', `/billing/accounts/${accountId}/webhook-deliveries?limit=9999`)).status).toBe(400);

      const email = `wh-${accountId.slice(0, 8)}@mixroute.example`;
      await staffService({ db }).createUser({ email, name: 'Billie', role: 'billing', password: 'correct horse battery staple' });
      const jar = new Map<string, string>();
      const browse = async (method: 'GET' | 'POST', p: string, form?: Record<string, string>) => {
        const res = await fetch(admin.url + p, {
          method,
          redirect: 'manual',
          headers: { ...(jar.size ? { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') } : {}), ...(form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) },
          ...(form ? { body: new URLSearchParams(form).toString() } : {}),
        });
        for (const cookie of res.headers.getSetCookie()) {
          const [name, ...value] = cookie.split(';')[0]!.split('=');
          jar.set(name!.trim(), value.join('='));
        }
        return { status: res.status, body: await res.text(), location: res.headers.get('location') };
      };
      const csrf = (page: string) => /name="_csrf" value="([^"]*)"/.exec(page)?.[1] ?? '';
      const login = await browse('GET', '/console/login');
      expect((await browse('POST', '/console/login', { _csrf: csrf(login.body), next: '/console', email, password: 'correct horse battery staple' })).status).toBe(303);
      expect((await browse('GET', `/console/accounts/${accountId}`)).body).toContain(`/console/accounts/${accountId}/webhooks`);
      const page = await browse('GET', `/console/accounts/${accountId}/webhooks`);
      expect(page.status).toBe(200);
      expect(page.body).toContain(receiver.url('/staff'));
      expect(page.body).toContain('credit_note.created');
      expect(page.body).toContain('succeeded');
      expect(page.body).not.toContain(created.json.secret.slice(6));
      const deliveryId = log.json.deliveries[0].id as string;
      const redone = await browse('POST', `/console/accounts/${accountId}/webhooks/deliveries/${deliveryId}/redeliver`, { _csrf: csrf(page.body) });
      expect(redone.status).toBe(303);
      await eventually(() => expect(receiver.at('/staff')).toHaveLength(2), { timeoutMs: 20_000, message: 'the console redelivery to arrive' });
      // Without the CSRF token nothing happens.
      expect((await browse('POST', `/console/accounts/${accountId}/webhooks/deliveries/${deliveryId}/redeliver`, {})).status).toBe(403);
    } finally {
      await admin.close();
    }
  });
});

describe('the dispatcher', () => {
  it('replays: its history so far, and the recorded one', async () => {
    const handle = client.workflow.getHandle(workflowIds.webhookDispatcher(config.temporal.taskQueue));
    await eventually(async () => expect((await handle.fetchHistory()).events?.some((e) => e.activityTaskCompletedEventAttributes)).toBe(true), { timeoutMs: 20_000, message: 'a completed round' });
    const history = await handle.fetchHistory();
    await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history, handle.workflowId);
    if (process.env.UPDATE_REPLAY_FIXTURES) fs.writeFileSync(DISPATCHER_HISTORY, historyToJSON(history));
    const recorded = historyFromJSON(JSON.parse(fs.readFileSync(DISPATCHER_HISTORY, 'utf8')));
    await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, recorded, 'webhook-dispatcher-replay');
  });
});
