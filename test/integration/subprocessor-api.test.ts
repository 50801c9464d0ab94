import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accountsService } from '../../src/accounts/accounts.service';
import { createAdminApp } from '../../src/admin/app';
import { systemClock } from '../../src/clock';
import { staffService } from '../../src/staff/staff.service';
import type { StaffRole } from '../../src/staff/staff.rules';
import { runCli, runCliJson } from '../helpers/cli';
import { signedInStaff } from '../helpers/staffConsole';
import { silentLogger, testConfig, testDb, testEnv } from '../helpers/env';
import { startFakeUpstream, type FakeUpstream } from '../helpers/fakeUpstream';
import { createCustomer, startTestGateway, UPSTREAM_KEY, type Customer } from '../helpers/gateway';
import { serve } from '../helpers/servers';

/**
 * The interfaces of sub-processor change notices (docs/processing-register.md#sub-processor-changes,
 * docs/client-api.md#sub-processor-notices) on the real database: the admin routes with their roles,
 * the client API's management-key routes, the CLI and the console's Register page. Changes are made
 * through the register API after agreements are set, so notices exist; no Temporal worker runs (the
 * admin app here has no Temporal connection), so notices stay pending until decided.
 */
const config = testConfig();
const env = testEnv(config);
const db = testDb(config);
const tag = randomUUID().slice(0, 8);
const tokens = {} as Record<StaffRole, string>;
let tokenIds = {} as Record<StaffRole, string>;
let admin: string;
let closeAdmin: () => Promise<void>;
let upstream: FakeUpstream;
let gw: Awaited<ReturnType<typeof startTestGateway>>;
/** a and b have agreements before the change; c never has one. */
let a: Customer;
let b: Customer;
let c: Customer;
const mgmt = {} as Record<'a' | 'b' | 'c', { key: string; keyId: string }>;
let changeId: string;

async function managementKey(cust: Customer) {
  const k = await accountsService({ db, clock: systemClock }).createKey({ accountId: cust.accountId, userId: cust.userId });
  await db('api_keys').where({ id: k.id }).update({ kind: 'management' });
  return { key: k.key, keyId: k.id };
}

async function call(role: StaffRole, method: 'GET' | 'POST', path: string, body?: unknown) {
  const res = await fetch(admin + path, { method, headers: { authorization: `Bearer ${tokens[role]}`, ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { body: JSON.stringify(body) } : {}) });
  return { status: res.status, contentType: res.headers.get('content-type') ?? '', body: (await res.json()) as any };
}

async function client(key: string, method: 'GET' | 'POST', path: string, body?: unknown) {
  const res = await fetch(gw.url + path, { method, headers: { authorization: `Bearer ${key}`, ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { body: JSON.stringify(body) } : {}) });
  return { status: res.status, body: (await res.json()) as any };
}

const agreement = (ref: string) => ({ agreementRef: ref, signedOn: '2026-01-15', reason: 'DPA countersigned' });

beforeAll(async () => {
  ({ url: admin, close: closeAdmin } = await serve(createAdminApp({ db, billing: config.billing, config, clock: systemClock, logger: silentLogger, readiness: {}, readyCheckTimeoutMs: 1000 })));
  for (const role of ['billing', 'compliance', 'admin'] as const) {
    const t = await staffService({ db }).createStaffToken({ role });
    tokens[role] = t.token;
    tokenIds = { ...tokenIds, [role]: t.id };
  }
  upstream = await startFakeUpstream({ apiKey: UPSTREAM_KEY });
  [a, b, c] = [await createCustomer(db, upstream.url), await createCustomer(db, upstream.url), await createCustomer(db, upstream.url)];
  mgmt.a = await managementKey(a);
  mgmt.b = await managementKey(b);
  mgmt.c = await managementKey(c);
  gw = await startTestGateway();

  for (const [cust, ref] of [[a, `DPA-A-${tag}`], [b, `DPA-B-${tag}`]] as const) {
    const r = await call('compliance', 'POST', `/billing/accounts/${cust.accountId}/processing-agreement`, agreement(ref));
    expect(r.status, JSON.stringify(r.body)).toBe(200);
  }
  const created = await call('compliance', 'POST', '/privacy/register/recipients', { kind: 'hosting', name: `Hosting ${tag}`, countries: ['US', 'DE'], role: 'sub_processor', reason: 'new hosting provider' });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  expect(created.body.subprocessorChange).toMatchObject({ workflowStarted: false });
  changeId = created.body.subprocessorChange.id;
});
afterAll(async () => {
  await gw?.stop();
  await upstream?.close();
  await closeAdmin?.();
  await db.destroy();
});

describe('admin API: processing agreements', () => {
  it('is set by compliance staff and admins with who and why, read by billing staff too, refused to billing staff', async () => {
    const none = await call('billing', 'GET', `/billing/accounts/${c.accountId}/processing-agreement`);
    expect(none.status).toBe(200);
    expect(none.body).toBeNull();

    const refused = await call('billing', 'POST', `/billing/accounts/${c.accountId}/processing-agreement`, agreement('DPA-X'));
    expect(refused.status).toBe(403);
    expect(refused.contentType).toContain('application/problem+json');
    expect(await db('account_processing_agreements').where({ account_id: c.accountId }).first()).toBeUndefined();

    const got = await call('compliance', 'GET', `/billing/accounts/${a.accountId}/processing-agreement`);
    expect(got.body).toMatchObject({ accountId: a.accountId, agreementRef: `DPA-A-${tag}`, signedOn: '2026-01-15', setBy: `staff:${tokenIds.compliance}`, reason: 'DPA countersigned' });

    const byAdmin = await call('admin', 'POST', `/billing/accounts/${a.accountId}/processing-agreement`, { ...agreement(`DPA-A2-${tag}`), reason: 'renewed agreement' });
    expect(byAdmin.status).toBe(200);
    expect((await call('billing', 'GET', `/billing/accounts/${a.accountId}/processing-agreement`)).body).toMatchObject({ agreementRef: `DPA-A2-${tag}`, setBy: `staff:${tokenIds.admin}` });
  });

  it('refuses a bad date and a missing reason as problem JSON, and an unknown account with 404', async () => {
    const badDate = await call('compliance', 'POST', `/billing/accounts/${c.accountId}/processing-agreement`, { ...agreement('DPA-X'), signedOn: '2026-02-30' });
    expect(badDate.status).toBe(400);
    expect(badDate.contentType).toContain('application/problem+json');
    expect(JSON.stringify(badDate.body.errors)).toContain('signedOn');
    expect((await call('compliance', 'POST', `/billing/accounts/${c.accountId}/processing-agreement`, { agreementRef: 'DPA-X', signedOn: '2026-01-15' })).status).toBe(400);
    const unknown = await call('compliance', 'POST', `/billing/accounts/${randomUUID()}/processing-agreement`, agreement('DPA-X'));
    expect(unknown.status).toBe(404);
    expect(unknown.contentType).toContain('application/problem+json');
    expect((await call('billing', 'GET', `/billing/accounts/not-an-id/processing-agreement`)).status).toBe(404);
  });
});

describe('admin API: sub-processor changes', () => {
  it('lists the change, open ones too, and shows it with its notice counts and notices', async () => {
    const listed = await call('compliance', 'GET', '/privacy/register/subprocessor-changes?limit=200');
    expect(listed.status).toBe(200);
    expect(listed.body.find((x: any) => x.id === changeId)).toMatchObject({ recipient: `Hosting ${tag}`, recipientKind: 'hosting', kind: 'recipient_added', countries: ['DE', 'US'], endedAt: null, noticePeriodS: 30 * 86_400 });
    const open = await call('compliance', 'GET', '/privacy/register/subprocessor-changes?open=true&limit=200');
    expect(open.body.every((x: any) => x.endedAt === null)).toBe(true);
    expect(open.body.some((x: any) => x.id === changeId)).toBe(true);

    const one = await call('compliance', 'GET', `/privacy/register/subprocessor-changes/${changeId}`);
    expect(one.status).toBe(200);
    expect(one.body.workflowId).toBe(`subprocessor-change:${changeId}`);
    expect(one.body.notices.pending).toBeGreaterThanOrEqual(2);

    const notices: any[] = [];
    for (let after: string | undefined; ; ) {
      const page = await call('compliance', 'GET', `/privacy/register/subprocessor-changes/${changeId}/notices?limit=100${after ? `&after=${after}` : ''}`);
      expect(page.status).toBe(200);
      notices.push(...page.body);
      if (page.body.length < 100) break;
      after = page.body.at(-1).accountId;
    }
    const ids = notices.map((n) => n.accountId);
    expect(ids).toEqual(expect.arrayContaining([a.accountId, b.accountId]));
    expect(ids).not.toContain(c.accountId);
    expect(notices.find((n) => n.accountId === a.accountId)).toMatchObject({ status: 'pending', holding: true });
  });

  it('shows an account its notices to billing staff too', async () => {
    const r = await call('billing', 'GET', `/billing/accounts/${a.accountId}/subprocessor-notices`);
    expect(r.status).toBe(200);
    expect(r.body.find((n: any) => n.changeId === changeId)).toMatchObject({ recipient: `Hosting ${tag}`, status: 'pending', holding: true });
    expect((await call('billing', 'GET', `/billing/accounts/${c.accountId}/subprocessor-notices`)).body).toEqual([]);
  });

  it('records a decision by staff only with a reason, and keeps who and why', async () => {
    const path = `/privacy/register/subprocessor-changes/${changeId}/accounts/${b.accountId}/decision`;
    const noReason = await call('compliance', 'POST', path, { decision: 'object' });
    expect(noReason.status).toBe(400);
    expect(noReason.contentType).toContain('application/problem+json');
    expect(noReason.body.errors).toEqual([expect.objectContaining({ field: 'reason' })]);
    expect((await db('subprocessor_notices').where({ change_id: changeId, account_id: b.accountId }).first()).status).toBe('pending');

    const objected = await call('compliance', 'POST', path, { decision: 'object', reason: 'customer email of 3 Dec' });
    expect(objected.status).toBe(200);
    expect(objected.body).toMatchObject({ status: 'objected', holding: true, changed: true });
    const row = await db('subprocessor_notices').where({ change_id: changeId, account_id: b.accountId }).first();
    expect(row.decided_by).toBe(`staff:${tokenIds.compliance} (customer email of 3 Dec)`);
    const again = await call('compliance', 'POST', path, { decision: 'object', reason: 'customer email of 3 Dec' });
    expect(again.body).toMatchObject({ status: 'objected', changed: false });

    expect((await call('billing', 'POST', path, { decision: 'accept', reason: 'customer asked' })).status).toBe(403);
    expect((await call('compliance', 'POST', `/privacy/register/subprocessor-changes/${changeId}/accounts/${c.accountId}/decision`, { decision: 'accept', reason: 'customer asked' })).status).toBe(404);
    expect((await call('compliance', 'POST', `/privacy/register/subprocessor-changes/${randomUUID()}/accounts/${b.accountId}/decision`, { decision: 'accept', reason: 'customer asked' })).status).toBe(404);
  });

  it('answers 404 for a change that does not exist and 409 for resume without Temporal', async () => {
    const missing = await call('compliance', 'GET', `/privacy/register/subprocessor-changes/${randomUUID()}`);
    expect(missing.status).toBe(404);
    expect(missing.contentType).toContain('application/problem+json');
    expect((await call('compliance', 'GET', `/privacy/register/subprocessor-changes/${randomUUID()}/notices`)).status).toBe(404);
    const resume = await call('compliance', 'POST', '/privacy/register/subprocessor-changes/resume');
    expect(resume.status).toBe(409);
    expect(resume.body.detail).toContain('Temporal');
  });

  it('lists every new route in the OpenAPI document with its roles', async () => {
    const doc = (await (await fetch(`${admin}/openapi.json`)).json()) as any;
    expect(doc.paths['/privacy/register/subprocessor-changes/{id}/accounts/{accountId}/decision'].post['x-roles']).toEqual(['compliance', 'admin']);
    expect(doc.paths['/billing/accounts/{id}/processing-agreement'].get['x-roles']).toEqual(['billing', 'admin', 'compliance']);
    expect(doc.paths['/billing/accounts/{id}/processing-agreement'].post['x-roles']).toEqual(['compliance', 'admin']);
  });
});

describe('client API: /v1/subprocessor-notices', () => {
  it("lists and shows the account's own notices to its management key", async () => {
    const list = await client(mgmt.a.key, 'GET', '/v1/subprocessor-notices');
    expect(list.status).toBe(200);
    expect(list.body.object).toBe('list');
    const n = list.body.data.find((x: any) => x.change_id === changeId);
    expect(n).toMatchObject({ recipient: `Hosting ${tag}`, recipient_kind: 'hosting', change: 'recipient_added', countries: ['DE', 'US'], status: 'pending', holding: true, decided_by: null });
    const one = await client(mgmt.a.key, 'GET', `/v1/subprocessor-notices/${changeId}`);
    expect(one.status).toBe(200);
    expect(one.body.data).toEqual(n);
    expect((await client(mgmt.c.key, 'GET', '/v1/subprocessor-notices')).body.data).toEqual([]);
  });

  it('accepts and objects with the key as actor; the same decision twice changes nothing', async () => {
    const accepted = await client(mgmt.a.key, 'POST', `/v1/subprocessor-notices/${changeId}/accept`);
    expect(accepted.status).toBe(200);
    expect(accepted.body).toMatchObject({ data: { status: 'accepted', holding: false, decided_by: `account:${mgmt.a.keyId}` }, changed: true });
    expect((await db('subprocessor_notices').where({ change_id: changeId, account_id: a.accountId }).first()).decided_by).toBe(`account:${mgmt.a.keyId}`);
    expect((await client(mgmt.a.key, 'POST', `/v1/subprocessor-notices/${changeId}/accept`)).body.changed).toBe(false);

    const objected = await client(mgmt.a.key, 'POST', `/v1/subprocessor-notices/${changeId}/object`, { reason: 'our customers are EU only' });
    expect(objected.status).toBe(200);
    expect(objected.body.data).toMatchObject({ status: 'objected', holding: true });
    expect((await db('subprocessor_notices').where({ change_id: changeId, account_id: a.accountId }).first()).decided_by).toBe(`account:${mgmt.a.keyId} (our customers are EU only)`);
    // b's notice (objected by staff) is untouched; staff decisions show as staff.
    const bView = (await client(mgmt.b.key, 'GET', `/v1/subprocessor-notices/${changeId}`)).body.data;
    expect(bView).toMatchObject({ status: 'objected', decided_by: 'staff' });
  });

  it("answers another account's notice and a bad id with 404 in OpenAI's error shape", async () => {
    for (const [method, path] of [
      ['GET', `/v1/subprocessor-notices/${changeId}`],
      ['POST', `/v1/subprocessor-notices/${changeId}/accept`],
      ['GET', '/v1/subprocessor-notices/not-a-uuid'],
      ['POST', `/v1/subprocessor-notices/${randomUUID()}/object`],
    ] as const) {
      const r = await client(mgmt.c.key, method, path);
      expect(r.status, `${method} ${path}`).toBe(404);
      expect(r.body.error).toMatchObject({ type: 'invalid_request_error', code: 'notice_not_found' });
    }
  });

  it('refuses inference keys like the other management routes', async () => {
    for (const [method, path] of [
      ['GET', '/v1/subprocessor-notices'],
      ['GET', `/v1/subprocessor-notices/${changeId}`],
      ['POST', `/v1/subprocessor-notices/${changeId}/accept`],
    ] as const) {
      const r = await client(a.key, method, path);
      expect(r.status).toBe(403);
      expect(r.body.error).toMatchObject({ type: 'permission_error', code: 'management_key_required' });
    }
    expect((await db('subprocessor_notices').where({ change_id: changeId, account_id: a.accountId }).first()).status).toBe('objected');
    expect((await fetch(`${gw.url}/v1/subprocessor-notices`)).status).toBe(401);
  });

  it('documents the routes in the client OpenAPI document', async () => {
    const doc = (await (await fetch(`${gw.url}/v1/openapi.json`)).json()) as any;
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/v1/subprocessor-notices', '/v1/subprocessor-notices/{changeId}', '/v1/subprocessor-notices/{changeId}/accept', '/v1/subprocessor-notices/{changeId}/object']));
  });
});

describe('CLI', () => {
  it('lists and shows changes, and records a decision with --reason', async () => {
    const list = await runCliJson(['register', 'notices', 'list', '--open', '--limit', '200'], env);
    expect(list.find((x: any) => x.id === changeId)).toMatchObject({ recipient: `Hosting ${tag}`, kind: 'recipient_added' });
    const show = await runCliJson(['register', 'notices', 'show', changeId], env);
    expect(show.notices.objected).toBeGreaterThanOrEqual(2);
    expect(show.accounts.map((n: any) => n.accountId)).toEqual(expect.arrayContaining([a.accountId, b.accountId]));
    const human = await runCli(['register', 'notices', 'list', '--limit', '200'], env);
    expect(human.code).toBe(0);
    expect(human.stdout).toContain(`Hosting ${tag}`);

    const noReason = await runCli(['register', 'notices', 'decide', changeId, b.accountId, 'accept'], env);
    expect(noReason.code).toBe(2);
    expect(noReason.stderr).toContain('--reason');
    const decided = await runCliJson(['register', 'notices', 'decide', changeId, b.accountId, 'accept', '--reason', 'customer withdrew its objection by email'], env);
    expect(decided).toMatchObject({ status: 'accepted', changed: true });
    expect((await db('subprocessor_notices').where({ change_id: changeId, account_id: b.accountId }).first()).decided_by).toMatch(/^cli:.+ \(customer withdrew its objection by email\)$/);
    const bad = await runCli(['register', 'notices', 'decide', changeId, b.accountId, 'maybe', '--reason', 'unclear'], env);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('decision must be accept or object');
  });

  it('starts the notice workflow when a recipient edit announces a sub-processor', async () => {
    // A task queue no worker polls: the workflow is started and stays where it is until terminated.
    const taskQueue = `sp-api-${tag}`;
    const added = await runCli(['register', 'recipients', 'add', '--kind', 'hosting', '--name', `CLI hosting ${tag}`, '--countries', 'FI', '--reason', 'second hosting site', '--json'], { ...env, TEMPORAL_TASK_QUEUE: taskQueue, SUBPROCESSOR_NOTICE_S: '3600' });
    expect(added.code, added.stderr).toBe(0);
    const change = JSON.parse(added.stdout).subprocessorChange;
    expect(change).toMatchObject({ workflowStarted: true });
    expect(change.accountsHeldBack).toBeGreaterThanOrEqual(2);
    const shown = await runCliJson(['register', 'notices', 'show', change.id], env);
    expect(shown.noticePeriodS).toBe(3600);
    const connection = await Connection.connect({ address: config.temporal.address! });
    try {
      const handle = new Client({ connection, namespace: config.temporal.namespace }).workflow.getHandle(`subprocessor-change:${change.id}`);
      const d = await handle.describe();
      expect(d.status.name).toBe('RUNNING');
      expect(d.taskQueue).toBe(taskQueue);
      await handle.terminate('test cleanup');
    } finally {
      await connection.close();
    }
  });

  it('sets and shows a processing agreement', async () => {
    const before = await runCli(['accounts', 'processing-agreement', 'show', c.accountId], env);
    expect(before.stdout).toContain('no data-processing agreement');
    const set = await runCliJson(['accounts', 'processing-agreement', 'set', c.accountId, '--ref', `DPA-C-${tag}`, '--signed-on', '2026-03-01', '--reason', 'signed at onboarding'], env);
    expect(set).toMatchObject({ accountId: c.accountId, agreementRef: `DPA-C-${tag}`, signedOn: '2026-03-01', reason: 'signed at onboarding' });
    expect(set.setBy).toMatch(/^cli:/);
    expect(await runCliJson(['accounts', 'processing-agreement', 'show', c.accountId], env)).toMatchObject({ agreementRef: `DPA-C-${tag}` });
    const badDate = await runCli(['accounts', 'processing-agreement', 'set', c.accountId, '--ref', 'X', '--signed-on', '01/03/2026', '--reason', 'signed at onboarding'], env);
    expect(badDate.code).not.toBe(0);
    expect(badDate.stderr).toContain('signedOn');
  });
});

describe('console', () => {
  it('lists sub-processor changes with their notice counts on the Register page', async () => {
    const { request } = await signedInStaff(db, admin, 'compliance');

    const page = await request('GET', '/console/register');
    expect(page.status).toBe(200);
    const section = page.body.split('<caption>Sub-processor changes</caption>')[1]?.split('</table>')[0] ?? '';
    const row = section.split('<tr>').find((r) => r.includes(`<td>Hosting ${tag}</td>`));
    expect(row, 'a row for the change').toBeDefined();
    const cells = row!.split('</tr>')[0]!.split('<td>').slice(1).map((x) => x.replace(/<[^>]+>/g, '').trim());
    const counts = (await call('compliance', 'GET', `/privacy/register/subprocessor-changes/${changeId}`)).body.notices;
    expect(cells.slice(1, 4)).toEqual([`Hosting ${tag}`, 'new sub-processor', 'DE, US']);
    expect(cells.slice(5)).toEqual([counts.pending, counts.accepted, counts.objected, counts.effective].map(String));
    expect(counts.accepted + counts.objected).toBeGreaterThanOrEqual(2);
  });
});
