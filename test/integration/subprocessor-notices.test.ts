import fs from 'node:fs';
import { createRequire } from 'node:module';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accountsService } from '../../src/accounts/accounts.service';
import { systemClock } from '../../src/clock';
import { registerService } from '../../src/register/register.service';
import { subprocessorService } from '../../src/register/subprocessor.service';
import { workflowIds } from '../../src/temporal/conventions';
import { webhooksService } from '../../src/webhooks/webhooks.service';
import type { SubprocessorChangeResult } from '../../workflows/messages';
import { testConfig, testDb } from '../helpers/env';
import { testActivities, workflowBundle } from '../helpers/worker';
import { eventually } from '../helpers/eventually';
import { startFakeUpstream } from '../helpers/fakeUpstream';
import { createCustomer, startTestGateway, UPSTREAM_KEY, UPSTREAM_KEY_ENV } from '../helpers/gateway';

/**
 * Sub-processor changes with a real worker, Temporal and PostgreSQL
 * (docs/processing-register.md#sub-processor-changes): a new model provider's
 * register entry holds it back for every account with a data-processing
 * agreement from the moment it is recorded; the `subprocessor-change:{id}`
 * workflow tells each such account once (event, email, webhook delivery, a
 * copy to the privacy contact), waits out a notice period of seconds, then
 * lets it in where the notice is still pending; accepting early and objecting
 * stand. A country added to a sub-processor is a change of its own; other
 * edits are not. The run is recorded as test/replay/histories/subprocessorChange.json
 * (UPDATE_REPLAY_FIXTURES=1).
 *
 * Other test files share the database and may record agreements and changes
 * of their own, so every assertion is about this file's accounts.
 */
const { historyToJSON } = createRequire(import.meta.url)('@temporalio/common/lib/proto-utils') as typeof import('@temporalio/common/lib/proto-utils');
const HISTORY = fileURLToPath(new URL('../replay/histories/subprocessorChange.json', import.meta.url));

const config = testConfig({ WEBHOOK_ALLOWED_HOSTS: '127.0.0.1' });
const db = testDb(config);
const taskQueue = config.temporal.taskQueue;
const accounts = accountsService({ db, clock: systemClock });
const subprocessors = subprocessorService({ db, clock: systemClock });
const webhooks = webhooksService({ db, clock: systemClock, config });
let connection: NativeConnection;
let clientConnection: Connection;
let client: Client;
let worker: Worker;
let running: Promise<void>;

/** The register as compliance staff use it, with notice workflows started on this file's queue. */
const register = (noticePeriodMs: number) =>
  registerService({ db, clock: systemClock, subprocessors: { noticePeriodMs, temporal: { client, taskQueue } } });

beforeAll(async () => {
  connection = await NativeConnection.connect({ address: config.temporal.address! });
  worker = await Worker.create({ connection, namespace: config.temporal.namespace, taskQueue, workflowBundle: await workflowBundle(), activities: testActivities(config, db) });
  running = worker.run();
  clientConnection = await Connection.connect({ address: config.temporal.address! });
  client = new Client({ connection: clientConnection, namespace: config.temporal.namespace });
});

afterAll(async () => {
  worker?.shutdown();
  await running;
  await connection?.close();
  await clientConnection?.close();
  await db.destroy();
});

async function account(opts: { agreement: boolean; contact?: string }) {
  const tag = randomUUID().slice(0, 8);
  const a = await accounts.createAccount({ name: `Sub ${tag}`, plan: 'postpaid', creditLimit: '100', billingEmail: `billing-${tag}@example.com` });
  if (opts.agreement) await subprocessors.agreements.set(a.id, { agreementRef: `DPA-${tag}`, signedOn: '2026-01-15', reason: 'signed with the order form' }, 'staff:test');
  if (opts.contact) await db('account_privacy_contacts').insert({ account_id: a.id, email: opts.contact, set_by: 'staff:test', reason: 'test fixture', set_at: new Date() });
  return { id: a.id, billingEmail: `billing-${tag}@example.com` };
}

async function newProvider() {
  const name = `sub-${randomUUID().slice(0, 8)}`;
  await accounts.addProvider({ name, baseUrl: 'http://127.0.0.1:9', apiKeyEnv: 'PROVIDER_OPENAI_API_KEY' });
  return name;
}

const entry = (provider: string, countries: string[]) => ({
  kind: 'model_provider',
  provider,
  role: 'sub_processor',
  countries,
  transferMechanism: 'standard_contractual_clauses',
  sccDate: '2021-06-04',
  agreementRef: `DPA-${provider}`,
  reason: 'new provider for the claude models',
});

const notice = (changeId: string, accountId: string) => db('subprocessor_notices').where({ change_id: changeId, account_id: accountId }).first();
const events = (accountId: string) => db('account_events').where({ account_id: accountId, type: 'subprocessor.announced' });
const mails = (to: string) => db('notification_outbox').where({ recipient: to });

describe('a new sub-processor', () => {
  it('is held back from agreement accounts until the period ends, announced once to each, and accepting or objecting stands', async () => {
    const early = await account({ agreement: true, contact: `privacy-${randomUUID().slice(0, 8)}@example.com` });
    const objector = await account({ agreement: true });
    const waiter = await account({ agreement: true });
    const noAgreement = await account({ agreement: false });
    const ep = await webhooks.registerEndpoint({ accountId: waiter.id, url: 'http://127.0.0.1:9/hook', events: ['subprocessor.announced'] });

    const provider = await newProvider();
    const created = (await register(4_000).recipients.create(entry(provider, ['US', 'IE']), 'staff:compliance'));
    if (!created.subprocessorChange) throw new Error('no sub-processor change recorded');
    const changeId = created.subprocessorChange.id;
    expect(created.subprocessorChange.workflowStarted).toBe(true);

    // Held back from the commit on: a pending notice for each agreement account, none for the other.
    for (const a of [early, objector, waiter]) expect((await notice(changeId, a.id))?.status).toBe('pending');
    expect(await notice(changeId, noAgreement.id)).toBeUndefined();
    const change = await subprocessors.changes.get(changeId);
    expect(change).toMatchObject({ recipient: provider, kind: 'recipient_added', countries: ['IE', 'US'], noticePeriodS: 4, endedAt: null, workflowId: `subprocessor-change:${changeId}` });

    // The accounts decide while the period runs.
    expect(await subprocessors.notices.decide(changeId, early.id, { decision: 'accept' }, 'account:key-1')).toMatchObject({ status: 'accepted', holding: false, changed: true });
    expect(await subprocessors.notices.decide(changeId, objector.id, { decision: 'object' }, 'account:key-2')).toMatchObject({ status: 'objected', holding: true, changed: true });
    // The same decision twice changes nothing.
    expect(await subprocessors.notices.decide(changeId, objector.id, { decision: 'object' }, 'account:key-2')).toMatchObject({ status: 'objected', changed: false });
    await expect(subprocessors.notices.decide(changeId, noAgreement.id, { decision: 'accept' }, 'account:key-3')).rejects.toThrow(/no notice/);

    const result = await client.workflow.getHandle<() => Promise<SubprocessorChangeResult>>(workflowIds.subprocessorChange(changeId)).result();
    expect(result.notified).toBeGreaterThanOrEqual(3);
    expect(result.effective).toBeGreaterThanOrEqual(1);

    // After the period: the waiting account's notice took effect; the decisions stood.
    expect((await notice(changeId, waiter.id))?.status).toBe('effective');
    expect((await notice(changeId, early.id))?.status).toBe('accepted');
    expect((await notice(changeId, objector.id))?.status).toBe('objected');
    expect((await subprocessors.changes.get(changeId)).endedAt).not.toBeNull();

    // Each agreement account told once: one event, one email to billing, the contact's copy, one webhook delivery.
    for (const a of [early, objector, waiter]) {
      const ev = await events(a.id);
      expect(ev).toHaveLength(1);
      expect(ev[0].data).toMatchObject({ changeId, recipient: provider, change: 'recipient_added', countries: 'IE, US', effectiveAt: created.subprocessorChange.effectiveAt });
      expect((await notice(changeId, a.id))?.notified_at).not.toBeNull();
      const m = await mails(a.billingEmail);
      expect(m).toHaveLength(1);
      expect(m[0].subject).toContain(provider);
    }
    expect(await events(noAgreement.id)).toHaveLength(0);
    const copy = await db('notification_outbox').where({ recipient: (await db('account_privacy_contacts').where({ account_id: early.id }).first()).email });
    expect(copy).toHaveLength(1);
    expect(copy[0].idempotency_key).toMatch(/^account-event:.+:privacy-contact$/);
    const deliveries = await db('webhook_deliveries').where({ endpoint_id: ep.id });
    expect(deliveries.map((d) => d.event_type)).toEqual(['subprocessor.announced']);

    // The objector may still accept later; an accepted notice may still be objected to.
    expect(await subprocessors.notices.decide(changeId, objector.id, { decision: 'accept' }, 'account:key-2')).toMatchObject({ status: 'accepted' });
    // Staff record an account's decision only with the reason it gave.
    await expect(subprocessors.notices.decide(changeId, waiter.id, { decision: 'object' }, 'staff:9')).rejects.toThrow(/reason/);
    expect(await subprocessors.notices.decide(changeId, waiter.id, { decision: 'object', reason: 'customer objected by letter' }, 'staff:9')).toMatchObject({ status: 'objected' });
    expect((await notice(changeId, waiter.id))?.decided_by).toBe('staff:9 (customer objected by letter)');

    if (process.env.UPDATE_REPLAY_FIXTURES) fs.writeFileSync(HISTORY, historyToJSON(await client.workflow.getHandle(workflowIds.subprocessorChange(changeId)).fetchHistory()));
  });

  it('a country added is a change naming only the new country; a rename or a dropped country is none', async () => {
    const a = await account({ agreement: true });
    const provider = await newProvider();
    const svc = register(60_000);
    const r = await svc.recipients.create(entry(provider, ['DE']), 'staff:compliance');
    const grown = await svc.recipients.update(r.id, { countries: ['DE', 'SG', 'US'], reason: 'provider opened two regions' }, 'staff:compliance');
    expect(grown.subprocessorChange).toBeDefined();
    const change = await subprocessors.changes.get(grown.subprocessorChange!.id);
    expect(change).toMatchObject({ kind: 'countries_added', countries: ['SG', 'US'] });
    expect((await notice(change.id, a.id))?.status).toBe('pending');

    const shrunk = await svc.recipients.update(r.id, { countries: ['DE'], reason: 'provider closed two regions' }, 'staff:compliance');
    expect(shrunk.subprocessorChange).toBeUndefined();
    const renamedAgreement = await svc.recipients.update(r.id, { agreementRef: 'DPA-2', reason: 'new agreement version' }, 'staff:compliance');
    expect(renamedAgreement.subprocessorChange).toBeUndefined();
    // Its open workflows (a minute's period) are ended by the test's worker shutting down; the rows stay open, as after a crash.
    expect((await subprocessors.changes.list({ open: 'true', limit: 200 })).map((c) => c.id)).toEqual(expect.arrayContaining([r.subprocessorChange!.id, change.id]));
  });

  it('a recipient that is not a sub-processor (the payment processor) is announced to nobody', async () => {
    await account({ agreement: true });
    const r = await register(1_000).recipients.create(
      { kind: 'payment_processor', name: `Pay ${randomUUID().slice(0, 8)}`, role: 'independent_controller', countries: ['US'], transferMechanism: 'adequacy_decision', agreementRef: 'TOS', reason: 'card payments' },
      'staff:compliance',
    );
    expect(r.subprocessorChange).toBeUndefined();
  });

  it('at the gateway: an agreement account reaches the new provider only once its notice period has run', async () => {
    const up = await startFakeUpstream({ apiKey: UPSTREAM_KEY });
    const gw = await startTestGateway({}, config, { [UPSTREAM_KEY_ENV]: UPSTREAM_KEY });
    try {
      const c = await createCustomer(db, up.url);
      await subprocessors.agreements.set(c.accountId, { agreementRef: 'DPA-gw', signedOn: '2026-02-01', reason: 'signed with the order form' }, 'staff:test');
      const chat = async () => {
        const res = await fetch(`${gw.url}/v1/chat/completions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${c.key}`, 'content-type': 'application/json' },
          body: JSON.stringify({ model: c.model, max_tokens: 5, messages: [{ role: 'user', content: 'hello' }] }),
        });
        return { status: res.status, body: (await res.json()) as { error?: { code?: string } } };
      };
      // No register entry yet: not an agreed sub-processor (once the routing table has the model).
      await eventually(async () => expect((await chat()).body.error?.code).toBe('subprocessor_not_approved'), { timeoutMs: 20_000, intervalMs: 200, message: 'the routing table to have the model' });

      const created = await register(8_000).recipients.create(entry(c.provider, ['US']), 'staff:compliance');
      const changeId = created.subprocessorChange!.id;
      // While the notice is pending from before a request was sent until after its answer came, the request is
      // refused and nothing reaches the provider; the loop ends once the workflow has ended the period.
      let refused = 0;
      for (;;) {
        if ((await notice(changeId, c.accountId))?.status !== 'pending') break;
        const reached = up.requests.length;
        const r = await chat();
        if ((await notice(changeId, c.accountId))?.status !== 'pending') break;
        expect(up.requests.length).toBe(reached);
        expect(r.status).toBe(403);
        expect(r.body.error?.code).toBe('subprocessor_not_approved');
        refused++;
      }
      expect((await notice(changeId, c.accountId))?.status).toBe('effective');
      expect(refused).toBeGreaterThan(0);
      // Then, within the key cache's TTL, it is.
      await eventually(async () => expect((await chat()).status).toBe(200), { timeoutMs: 20_000, intervalMs: 200, message: 'the provider to be reached after the period' });
      expect(up.requests.length).toBeGreaterThan(0);
      expect(await usageError(c.accountId)).toContain('subprocessor_not_approved');
    } finally {
      await gw.stop();
      await up.close();
    }
  });
});

const usageError = async (accountId: string): Promise<string[]> =>
  (await db('usage_events').where({ account_id: accountId }).whereNotNull('error_type').distinct('error_type')).map((r) => r.error_type as string);
