import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accountsService } from '../../src/accounts/accounts.service';
import { createAdminApp } from '../../src/admin/app';
import { systemClock } from '../../src/clock';
import { staffService } from '../../src/staff/staff.service';
import { runCli, runCliJson } from '../helpers/cli';
import { signedInStaff } from '../helpers/staffConsole';
import { silentLogger, testConfig, testDb, testEnv } from '../helpers/env';
import { serve } from '../helpers/servers';

/**
 * The processing register through the admin API and the CLI, on the real
 * database: entries are created and changed, every change leaves a
 * register_changes row with who, why, before and after, and completeness
 * flags a provider with no entry and one whose entry lacks facts. Standard
 * contractual clauses without their date are refused on the way in (the table
 * cannot hold them either); the rule that flags them is in
 * test/unit/register-rules.test.ts.
 */
const config = testConfig();
const env = testEnv(config);
const db = testDb(config);
const tag = randomUUID().slice(0, 8);
let admin: string;
let close: () => Promise<void>;
let token: string;
let tokenId: string;
const providers = { bare: '', covered: '' };

beforeAll(async () => {
  const accounts = accountsService({ db, clock: systemClock, config });
  for (const k of ['bare', 'covered'] as const) {
    providers[k] = (await accounts.addProvider({ name: `reg-${k}-${tag}`, baseUrl: 'https://api.example.com', kind: 'openai' })).id;
  }
  ({ url: admin, close } = await serve(createAdminApp({ db, billing: config.billing, config, clock: systemClock, logger: silentLogger, readiness: {}, readyCheckTimeoutMs: 1000 })));
  ({ token, id: tokenId } = await staffService({ db }).createStaffToken({ role: 'compliance' }));
});
afterAll(async () => {
  await close?.();
  await db.destroy();
});

async function call(method: 'GET' | 'POST', path: string, body?: unknown) {
  const res = await fetch(admin + path, { method, headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { body: JSON.stringify(body) } : {}) });
  return { status: res.status, body: (await res.json()) as any };
}
const changesOf = (entityId: string) => db('register_changes').where({ entity_id: entityId }).orderBy('id');

describe('register: activities', () => {
  it('creates and updates an activity, each change logged with who, why, before and after', async () => {
    const created = await call('POST', '/privacy/register/activities', {
      key: `gw_${tag}`,
      purpose: 'Forwarding API requests to model providers',
      legalBasis: 'contract',
      dataSubjectCategories: ['customer end users'],
      dataCategories: ['prompts', 'request metadata'],
      systems: ['gateway'],
      retentionCategory: 'usage_events',
      reason: 'initial register',
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body).toMatchObject({ key: `gw_${tag}`, legalBasis: 'contract', retentionCategory: 'usage_events' });
    const id = created.body.id as string;

    const updated = await call('POST', `/privacy/register/activities/${id}`, { legalBasis: 'legitimate_interests', reason: 'DPO review 2026' });
    expect(updated.status).toBe(200);
    expect(updated.body).toMatchObject({ legalBasis: 'legitimate_interests', purpose: 'Forwarding API requests to model providers' });
    expect((await call('GET', `/privacy/register/activities/${id}`)).body.legalBasis).toBe('legitimate_interests');

    const log = await changesOf(id);
    expect(log.map((c) => [c.action, c.actor, c.reason])).toEqual([
      ['created', `staff:${tokenId}`, 'initial register'],
      ['updated', `staff:${tokenId}`, 'DPO review 2026'],
    ]);
    expect(log[0].before).toBeNull();
    expect(log[1].before).toMatchObject({ legalBasis: 'contract' });
    expect(log[1].after).toMatchObject({ legalBasis: 'legitimate_interests' });

    const listed = await call('GET', `/privacy/register/changes?entityId=${id}`);
    expect(listed.body.map((c: any) => c.action)).toEqual(['updated', 'created']);
  });

  it('refuses a retention category that does not exist, and a duplicate key', async () => {
    const base = { key: `dup_${tag}`, purpose: 'Billing', legalBasis: 'legal_obligation', dataSubjectCategories: ['customers'], dataCategories: ['invoices'], systems: ['ledger'], reason: 'initial register' };
    expect((await call('POST', '/privacy/register/activities', { ...base, retentionCategory: 'nope' })).status).toBe(400);
    expect((await call('POST', '/privacy/register/activities', base)).status).toBe(201);
    expect((await call('POST', '/privacy/register/activities', base)).status).toBe(409);
  });

  it('records which kinds of recipient an activity discloses to, and refuses a kind that is not one', async () => {
    const base = { key: `kinds_${tag}`, purpose: 'Forwarding API requests', legalBasis: 'contract', dataSubjectCategories: ['end users'], dataCategories: ['prompts in transit'], systems: ['gateway'], reason: 'initial register' };
    const bad = await call('POST', '/privacy/register/activities', { ...base, recipientKinds: ['model_provider', 'advertisers'] });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toContain('recipientKinds');
    const created = await call('POST', '/privacy/register/activities', { ...base, recipientKinds: ['model_provider', 'hosting'] });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body.recipientKinds).toEqual(['model_provider', 'hosting']);
    const cleared = await call('POST', `/privacy/register/activities/${created.body.id}`, { recipientKinds: null, reason: 'not stated after review' });
    expect(cleared.body.recipientKinds).toBeNull();
    expect((await changesOf(created.body.id as string))[1].after).toMatchObject({ recipientKinds: null });
  });
});

describe('register: recipients and completeness', () => {
  it('flags a provider without an entry, and one whose entry lacks facts, until it is complete', async () => {
    const r = await call('POST', '/privacy/register/recipients', {
      kind: 'model_provider',
      provider: `reg-covered-${tag}`,
      role: 'sub_processor',
      countries: ['US'],
      reason: 'new provider',
    });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    expect(r.body).toMatchObject({ name: `reg-covered-${tag}`, providerId: providers.covered, missing: ['transfer_mechanism', 'agreement_ref'] });

    // Standard contractual clauses without their date are refused, and nothing changes.
    const noDate = await call('POST', `/privacy/register/recipients/${r.body.id}`, { transferMechanism: 'standard_contractual_clauses', reason: 'SCC signed' });
    expect(noDate.status).toBe(400);
    expect(JSON.stringify(noDate.body)).toContain('sccDate');
    expect(await changesOf(r.body.id)).toHaveLength(1);

    let c = (await call('GET', '/privacy/register/completeness')).body;
    const entry = (id: string) => c.providers.find((p: any) => p.providerId === id);
    expect(c.complete).toBe(false);
    expect(entry(providers.bare)).toMatchObject({ recipientId: null, missing: ['register entry'] });
    expect(entry(providers.covered).missing).toEqual(['transfer_mechanism', 'agreement_ref']);

    const done = await call('POST', `/privacy/register/recipients/${r.body.id}`, { transferMechanism: 'standard_contractual_clauses', sccDate: '2021-06-04', agreementRef: 'DPA-2026-07', reason: 'SCC and DPA on file' });
    expect(done.status, JSON.stringify(done.body)).toBe(200);
    expect(done.body.missing).toEqual([]);
    c = (await call('GET', '/privacy/register/completeness')).body;
    expect(entry(providers.covered).missing).toEqual([]);
    expect(entry(providers.bare).missing).toEqual(['register entry']);

    const log = await changesOf(r.body.id);
    expect(log).toHaveLength(2);
    expect(log[1]).toMatchObject({ action: 'updated', actor: `staff:${tokenId}`, reason: 'SCC and DPA on file' });
    expect(log[1].before).toMatchObject({ transferMechanism: null, sccDate: null });
    expect(log[1].after).toMatchObject({ transferMechanism: 'standard_contractual_clauses', sccDate: '2021-06-04', agreementRef: 'DPA-2026-07' });

    // A provider has one entry.
    expect((await call('POST', '/privacy/register/recipients', { kind: 'model_provider', provider: providers.covered, reason: 'again' })).status).toBe(409);
  });

  it('names other recipients by name and flags their missing facts', async () => {
    const r = await call('POST', '/privacy/register/recipients', { kind: 'email_service', name: `Mailer ${tag}`, countries: ['DE', 'IE'], transferMechanism: 'not_needed', role: 'processor', reason: 'email provider' });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    expect(r.body.missing).toEqual(['agreement_ref']);
    const c = (await call('GET', '/privacy/register/completeness')).body;
    expect(c.otherRecipients.find((x: any) => x.recipientId === r.body.id)).toMatchObject({ kind: 'email_service', missing: ['agreement_ref'] });
    expect((await call('GET', '/privacy/register/recipients')).body.some((x: any) => x.id === r.body.id)).toBe(true);
  });
});

describe('register: the console', () => {
  const signedIn = async (role: 'compliance' | 'billing') => (await signedInStaff(db, admin, role)).get;

  it('flags each provider that lacks an entry or facts on the Register page, for compliance staff only', async () => {
    const get = await signedIn('compliance');
    const page = await get('/console/register');
    expect(page.status).toBe(200);
    const row = (name: string) => page.body.split('<tr>').find((r) => r.startsWith(`<td>${name}</td>`))?.split('</tr>')[0] ?? '';
    expect(row(`reg-bare-${tag}`)).toContain('incomplete: register entry');
    expect(page.body).toContain('href="/console/register"');
    expect((await (await signedIn('billing'))('/console/register')).status).toBe(403);
  });
});

describe('register: the CLI', () => {
  it('adds and updates a recipient with --reason, logged under the CLI user; refuses a change without one', async () => {
    const name = `Hosting ${tag}`;
    const added = await runCliJson(['register', 'recipients', 'add', '--kind', 'hosting', '--name', name, '--countries', 'DE,FI', '--role', 'processor', '--reason', 'hosting contract'], env);
    expect(added).toMatchObject({ name, countries: ['DE', 'FI'], missing: ['transfer_mechanism', 'agreement_ref'] });
    const updated = await runCliJson(['register', 'recipients', 'update', added.id, '--transfer', 'not_needed', '--agreement', 'HOST-1', '--reason', 'contract filed'], env);
    expect(updated.missing).toEqual([]);
    const noReason = await runCli(['register', 'recipients', 'update', added.id, '--agreement', 'HOST-2'], env);
    expect(noReason.code).toBe(2);
    expect(noReason.stderr).toContain('--reason');
    const changes = await runCliJson(['register', 'changes', '--entity', added.id], env);
    expect(changes.map((c: any) => c.reason)).toEqual(['contract filed', 'hosting contract']);
    expect(changes[0].actor).toMatch(/^cli:/);
    const completeness = await runCli(['register', 'completeness'], env);
    expect(completeness.code).toBe(0);
    expect(completeness.stdout).toContain(`reg-bare-${tag}`);
    expect(completeness.stdout).toMatch(new RegExp(`reg-bare-${tag}\\s+INCOMPLETE: register entry`));
  });
});
