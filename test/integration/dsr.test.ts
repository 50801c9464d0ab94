import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { strFromU8, unzipSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { untilTrue } from '../helpers/eventually';
import { createAdminApp } from '../../src/admin/app';
import { Money } from '../../src/shared/money.rules';
import { systemClock } from '../../src/clock';
import type { Config } from '../../src/config';
import { usageAnalytics } from '../../src/privacy/analytics.data';
import { settleAccountUsage } from '../../src/metering/metering.service';
import { privacyService } from '../../src/privacy/privacy.service';
import { accountsService } from '../../src/accounts/accounts.service';
import type { DsrState } from '../../workflows/messages';
import { runCli, runCliJson } from '../helpers/cli';
import { silentLogger, testConfig, testDb, testEnv } from '../helpers/env';
import { serve } from '../helpers/servers';
import { dsrSuite } from '../helpers/dsrStack';
import { withTestWorker } from '../helpers/worker';
import { insertUsageEvents } from '../helpers/usageEvents';
import { staffService } from '../../src/staff/staff.service';

/**
 * Data-subject requests, one right at a time, each checked by its effect on
 * the data; then the clock (verification timeout, extension, reminders and
 * overdue), refusals and withdrawal. Timers run in seconds: durations are
 * configuration.
 */
const { historyToJSON } = createRequire(import.meta.url)('@temporalio/common/lib/proto-utils') as typeof import('@temporalio/common/lib/proto-utils');
const HISTORIES = fileURLToPath(new URL('../replay/histories/', import.meta.url));

const base = testConfig();
const db = testDb(base);
const suite = dsrSuite(base, db);

/** A config of its own (task queue, data dir and so mailbox), with DSR timers as given. */
const overridesOf = new WeakMap<Config, Record<string, string>>();
function dsrConfig(overrides: Record<string, string> = {}): Config {
  const all = { DATA_DIR: fs.mkdtempSync(path.join(os.tmpdir(), 'mixroute-dsr-')), DSR_REMINDER_BEFORE_S: '3600', ...overrides };
  const config = testConfig(all);
  overridesOf.set(config, all);
  return config;
}
/** The CLI child processes see the same DSR settings as the test's worker. */
const dsrEnv = (config: Config) => testEnv(config, overridesOf.get(config));

function mailbox(config: Config): { to: string; subject: string; body: string }[] {
  if (!fs.existsSync(config.mail.mailboxDir)) return [];
  return fs
    .readdirSync(config.mail.mailboxDir)
    .sort()
    .map((f) => JSON.parse(fs.readFileSync(path.join(config.mail.mailboxDir, f), 'utf8')));
}
/** The code mailed to `email` and the request id of its verify link (the public form names no request). */
const codeMail = (config: Config, email: string) => {
  const m = mailbox(config).find((x) => x.to === email && /confirm it is you/.test(x.subject));
  return m ? { id: /\/privacy\/requests\/([0-9a-f-]{36})\/verify/.exec(m.body)![1]!, code: /enter this code: (\d{6})/.exec(m.body)![1]! } : null;
};
const result = (id: string) => suite.client.workflow.getHandle(`dsr:${id}`).result() as Promise<DsrState>;

interface Person {
  email: string;
  accountId: string;
  userId: string;
  keyId: string;
  provider: string;
}

/** A subject with data in every category: account (as billing contact), user, key, usage, logins, consents, security events, payment, ledger, invoice. */
async function person(): Promise<Person> {
  const ops = accountsService({ db, clock: systemClock });
  const tag = randomUUID().slice(0, 8);
  const email = `subject-${tag}@example.com`;
  const provider = `prov-dsr-${tag}`;
  const account = await ops.createAccount({ name: `Subject Co ${tag}`, billingEmail: email, country: 'DE' });
  const user = await ops.createUser({ accountId: account.id, name: `Sam Subject ${tag}`, email, phone: '+49 30 1234567', jobTitle: 'CTO' });
  const key = await ops.createKey({ accountId: account.id, userId: user.id });
  await insertUsageEvents(
    db,
    [0, 1].map((i) => ({
      request_id: `req-dsr-${tag}-${i}`,
      occurred_at: new Date(Date.now() - 60_000 * (i + 1)),
      finished_at: new Date(Date.now() - 60_000 * (i + 1) + 500),
      account_id: account.id,
      api_key_id: key.id,
      user_id: user.id,
      model: 'some-model',
      provider,
      upstream_model: 'up',
      latency_ms: 30,
      source_ip: '203.0.113.7',
      user_agent: `agent-${tag}`,
    })),
  );
  await db('login_records').insert({ user_id: user.id, source_ip: '203.0.113.8', user_agent: `browser-${tag}`, success: true });
  await db('users').where({ id: user.id }).update({ password_hash: `$2b$10$hash-${tag}` });
  await db('customer_sessions').insert({
    id_hash: `sess-hash-${tag}`, user_id: user.id, account_id: account.id, csrf_token: `csrf-${tag}`,
    expires_at: new Date(Date.now() + 3_600_000), user_agent: `console-browser-${tag}`, ip_prefix: '203.0.113.0/24',
  });
  await db('consent_records').insert({ user_id: user.id, purpose: 'marketing', granted: true, source: 'console' });
  await db('users').where({ id: user.id }).update({ marketing_consent: true });
  await db('security_events').insert({ kind: 'rate_limited', reason: 'rpm_1', account_id: account.id, api_key_id: key.id, request_id: `req-dsr-${tag}-x`, source_ip: '203.0.113.9', user_agent: `agent-${tag}`, source: 'gateway' });
  await db('payments').insert({ provider: 'stripe', provider_payment_id: `pi_dsr_${tag}`, account_id: account.id, amount: '10', currency: 'USD', status: 'succeeded' });
  await db('ledger_entries').insert({ account_id: account.id, kind: 'grant', contra: 'promotions', amount: '1', idempotency_key: `dsr-grant-${tag}`, reference_type: 'test', reference_id: tag, actor: 'test', balance_after: '1' });
  await db('account_balances').where({ account_id: account.id }).update({ balance: '1' });
  await db('invoices').insert({
    kind: 'invoice', account_id: account.id, period: '2026-10', status: 'finalized', series: `DSR${tag}`, number: `DSR-${tag}-000001`, plan: 'prepaid', currency: 'USD',
    subtotal: '1', tax_rate: '0', tax_amount: '0', total: '1', credits_applied: '1', amount_due: '0', tax_kind: 'domestic',
    customer: JSON.stringify({ name: `Subject Co ${tag}`, billingEmail: email, accountId: account.id }), issuer: JSON.stringify({ name: 'MixRoute' }), issued_at: new Date(),
  });
  return { email, accountId: account.id, userId: user.id, keyId: key.id, provider };
}

async function tablesContaining(needle: string): Promise<string[]> {
  const tables: string[] = await db('pg_tables').where({ schemaname: 'public' }).pluck('tablename');
  const hits: string[] = [];
  for (const t of tables) {
    const { rows } = await db.raw(`SELECT count(*)::int AS n FROM ?? x WHERE x::text ILIKE ?`, [t, `%${needle}%`]);
    if (rows[0].n > 0 && !t.startsWith('usage_events_')) hits.push(t);
  }
  return hits.sort();
}

async function adminServer(config: Config) {
  const app = createAdminApp({ db, billing: config.billing, config, clock: systemClock, logger: silentLogger, readiness: {}, readyCheckTimeoutMs: 1000, temporal: { client: suite.client, taskQueue: config.temporal.taskQueue } });
  const s = await serve(app);
  const { token } = await staffService({ db }).createStaffToken({ role: 'compliance' });
  const call = async (method: string, p: string, body?: unknown, auth = true) => {
    const res = await fetch(s.url + p, { method, headers: { ...(auth ? { authorization: `Bearer ${token}` } : {}), ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined });
    const type = res.headers.get('content-type') ?? '';
    return { status: res.status, type, body: type.includes('json') ? ((await res.json()) as any) : Buffer.from(await res.arrayBuffer()) };
  };
  return { url: s.url, call, close: s.close };
}

describe('data-subject requests: each right and its effect on the data', () => {
  it('access: the subject files it on the public form, proves it with the emailed code, and downloads a package with every category, a limited number of times', async () => {
    const config = dsrConfig({ DSR_PACKAGE_MAX_DOWNLOADS: '2' });
    const p = await person();
    const admin = await adminServer(config);
    try {
      await withTestWorker(config, db, async () => {
        const filed = await admin.call('POST', '/privacy/requests', { type: 'access', email: p.email, jurisdiction: 'gdpr' }, false);
        expect(filed.status).toBe(202);
        // The public answer names no request: the subject has its id from the link in the email.
        const { id, code } = await untilTrue(() => codeMail(config, p.email), { timeoutMs: 15_000, message: 'the code mail to reach the subject' });
        const wrong = await admin.call('POST', `/privacy/requests/${id}/verify`, { code: code === '000000' ? '111111' : '000000' }, false);
        expect(wrong.status).toBe(400);
        expect(wrong.type).toContain('application/problem+json');
        expect((await admin.call('POST', `/privacy/requests/${id}/verify`, { code }, false)).status).toBe(200);
        expect(await result(id)).toMatchObject({ status: 'completed', verified: true });

        const answer = mailbox(config).find((m) => m.to === p.email && /completed/.test(m.subject))!;
        expect(answer.body).toContain('We do not retain the content of prompts');
        expect(answer.body).toContain(`Providers: ${p.provider}`);
        const link = new URL(/(http\S+\/privacy\/packages\/\S+)/.exec(answer.body)![1]!);
        const first = await admin.call('GET', link.pathname + link.search, undefined, false);
        expect(first.status).toBe(200);
        expect(first.type).toBe('application/zip');
        const files = unzipSync(new Uint8Array(first.body as Buffer));
        const doc = JSON.parse(strFromU8(files['data.json']!));
        for (const category of ['users', 'accounts', 'api_keys', 'usage_metadata', 'login_records', 'customer_sessions', 'consents', 'security_events', 'payments', 'ledger_entries', 'invoices', 'rights_requests']) {
          expect(doc.data[category]?.length, category).toBeGreaterThan(0);
          expect(files[`${category}.csv`], `${category}.csv`).toBeDefined();
        }
        expect(doc.data.users[0]).toMatchObject({ email: p.email, phone: '+49 30 1234567' });
        expect(JSON.stringify(doc.data.api_keys)).not.toMatch(/key_hash/);
        expect(doc.data.customer_sessions).toEqual([{ created_at: expect.any(String), expires_at: expect.any(String), revoked_at: null, user_agent: expect.stringMatching(/^console-browser-/), ip_prefix: '203.0.113.0/24' }]);
        expect(Object.values(files).map((f) => strFromU8(f)).join('\n')).not.toMatch(/sess-hash-|csrf-/);
        expect(doc.payloadContent).toMatchObject({ retained: false, providers: [p.provider] });

        expect((await admin.call('GET', link.pathname + link.search, undefined, false)).status).toBe(200);
        const third = await admin.call('GET', link.pathname + link.search, undefined, false);
        expect(third.status).toBe(410);
        // One character of the signature changed (to another one: a signature may start with 'A').
        const tampered = await admin.call('GET', link.pathname + link.search.replace(/sig=(.)/, (_m, c: string) => `sig=${c === 'A' ? 'B' : 'A'}`), undefined, false);
        expect(tampered.status).toBe(404);
        const shown = await admin.call('GET', `/privacy/dsr/${id}`);
        expect(shown.body.events.filter((e: { action: string }) => e.action === 'package_downloaded')).toHaveLength(2);
        expect(shown.body.events.map((e: { action: string }) => e.action)).toEqual(
          expect.arrayContaining(['received', 'verification_started', 'verification_code_sent', 'identity_verified', 'fulfilled', 'closed']),
        );

        // The history carries ids and codes, never the subject's email.
        const history = historyToJSON(await suite.client.workflow.getHandle(`dsr:${id}`).fetchHistory());
        expect(history).not.toContain(p.email);
        if (process.env.UPDATE_REPLAY_FIXTURES) fs.writeFileSync(path.join(HISTORIES, 'dataSubjectRequest.json'), history);
      });
    } finally {
      await admin.close();
    }
  });

  it('portability: JSON plus one CSV per table of what they provided and their usage, from the CLI with manual verification', async () => {
    const config = dsrConfig();
    const env = dsrEnv(config);
    const p = await person();
    await withTestWorker(config, db, async () => {
      const created = await runCliJson(['dsr', 'create', '--type', 'portability', '--email', p.email], env);
      await runCliJson(['dsr', 'verify', created.id, '--method', 'document', '--note', 'passport checked on a video call'], env);
      expect(await result(created.id)).toMatchObject({ status: 'completed' });
      const row = await db('dsr_exports').where({ request_id: created.id }).first();
      expect(row.bytes).toBeGreaterThan(0);
      // Encrypted at rest: the stored bytes are not a zip and do not contain the email.
      expect(Buffer.from(row.ciphertext).subarray(0, 2).toString()).not.toBe('PK');
      expect(Buffer.from(row.ciphertext).includes(Buffer.from(p.email))).toBe(false);
      const svc = privacyService({ db, clock: systemClock, config });
      const answer = mailbox(config).find((m) => m.to === p.email && /completed/.test(m.subject))!;
      const link = new URL(/(http\S+\/privacy\/packages\/\S+)/.exec(answer.body)![1]!);
      const files = unzipSync(new Uint8Array(await svc.download(link.pathname.split('/').pop()!, Object.fromEntries(link.searchParams))));
      expect(Object.keys(files).sort()).toEqual(['accounts.csv', 'api_keys.csv', 'data.json', 'usage_metadata.csv', 'users.csv']);
      expect(strFromU8(files['usage_metadata.csv']!).split('\n')[0]).toContain('request_id,occurred_at');
    });
  });

  it('correction: approved by compliance staff, applied, and recorded by field name', async () => {
    const config = dsrConfig();
    const env = dsrEnv(config);
    const p = await person();
    await withTestWorker(config, db, async () => {
      const created = await runCliJson(['dsr', 'create', '--type', 'correction', '--email', p.email, '--changes', JSON.stringify({ user: { name: 'Samantha Subject', job_title: 'CEO' } })], env);
      await runCliJson(['dsr', 'verify', created.id, '--method', 'account_login', '--note', 'confirmed from the console session'], env);
      await untilTrue(
        async () => (await db('dsr_requests').where({ id: created.id }).first()).status === 'awaiting_approval' || ((await suite.client.workflow.getHandle(`dsr:${created.id}`).query('dsrStatus')) as DsrState).status === 'awaiting_approval',
        { timeoutMs: 15_000, message: 'the verified correction to await approval' },
      );
      expect((await db('users').where({ id: p.userId }).first()).name).not.toBe('Samantha Subject');
      await runCliJson(['dsr', 'approve', created.id], env);
      expect(await result(created.id)).toMatchObject({ status: 'completed' });
      expect(await db('users').where({ id: p.userId }).first()).toMatchObject({ name: 'Samantha Subject', job_title: 'CEO' });
      const shown = await runCliJson(['dsr', 'show', created.id], env);
      const approved = shown.events.find((e: { action: string }) => e.action === 'correction_approved');
      expect(approved).toMatchObject({ actor: expect.stringMatching(/^cli:/), detail: { fields: ['user.name', 'user.job_title'] } });
      expect(shown.response.fieldsChanged).toEqual(['user.name', 'user.job_title']);
      expect(JSON.stringify(shown.events)).not.toContain('Samantha');
    });
  });

  it("deletion: the subject's email is left only where the law keeps it, which the answer lists; keys revoked, logins gone, IPs stripped, evidence kept", async () => {
    const config = dsrConfig();
    const env = dsrEnv(config);
    const p = await person();
    expect(await tablesContaining(p.email)).toEqual(expect.arrayContaining(['accounts', 'invoices', 'users']));
    await withTestWorker(config, db, async () => {
      const created = await runCliJson(['dsr', 'create', '--type', 'deletion', '--email', p.email, '--jurisdiction', 'gdpr'], env);
      await runCliJson(['dsr', 'verify', created.id, '--method', 'document', '--note', 'ID card'], env);
      expect(await result(created.id)).toMatchObject({ status: 'completed' });
    });
    // Kept by law: the issued invoice (its customer block), restricted.
    expect(await tablesContaining(p.email)).toEqual(['invoices']);
    expect(await db('api_keys').where({ id: p.keyId }).whereNull('revoked_at')).toEqual([]);
    expect(await db('login_records').where({ user_id: p.userId })).toEqual([]);
    expect(await db('customer_sessions').where({ user_id: p.userId })).toEqual([]);
    const events = await db('usage_events').where({ user_id: p.userId });
    expect(events.length).toBe(2);
    expect(events.every((e) => e.source_ip === null && e.user_agent === null)).toBe(true);
    expect(await db('users').where({ id: p.userId }).first()).toMatchObject({ name: 'erased', phone: null, job_title: null, password_hash: null, processing_restricted: true });
    expect(await db('accounts').where({ id: p.accountId }).first()).toMatchObject({ billing_email: null, processing_restricted: true });
    const request = await db('dsr_requests').where({ subject_email_hash: (await import('../../src/privacy/privacy.data')).emailHash(p.email) }).first();
    expect(request.subject_email).toBeNull();
    expect(request.response.retained.map((r: { category: string }) => r.category)).toEqual(['invoices', 'payments', 'ledger_entries', 'tax_data']);
    const evidence = await db('erasure_evidence').where({ request_id: request.id });
    expect(evidence).toEqual(expect.arrayContaining([expect.objectContaining({ category: 'login_records', action: 'erased', rows: 1 }), expect.objectContaining({ category: 'customer_sessions', action: 'erased', rows: 1 }), expect.objectContaining({ category: 'usage_metadata', action: 'stripped', rows: 2 })]));
    expect(JSON.stringify(evidence)).not.toContain(p.email);
    // What was kept is remembered per account, for the retention schedule to finish when the period ends.
    const kept = await db('dsr_kept_records').where({ request_id: request.id }).select('account_id', 'category', 'erased_at');
    expect(kept).toEqual(expect.arrayContaining([{ account_id: p.accountId, category: 'invoices', erased_at: null }]));
  });

  it('restriction and objection leave the subject out of usage analytics while billing goes on; consent withdrawal is recorded with history', async () => {
    const config = dsrConfig();
    const env = dsrEnv(config);
    const [restricted, objecting, consenting] = [await person(), await person(), await person()];
    const window = { from: new Date(Date.now() - 3_600_000).toISOString(), to: new Date(Date.now() + 60_000).toISOString() };
    const analysed = async () => (await usageAnalytics(db, window)).map((r: { user_id: string }) => r.user_id);
    expect(await analysed()).toEqual(expect.arrayContaining([restricted.userId, objecting.userId]));
    await withTestWorker(config, db, async () => {
      for (const [type, p] of [['restriction', restricted], ['objection', objecting], ['consent_withdrawal', consenting]] as const) {
        const created = await runCliJson(['dsr', 'create', '--type', type, '--email', p.email], env);
        await runCliJson(['dsr', 'verify', created.id, '--method', 'other', '--note', 'known correspondent'], env);
        expect(await result(created.id)).toMatchObject({ status: 'completed' });
      }
    });
    const after = await analysed();
    expect(after).not.toContain(restricted.userId);
    expect(after).not.toContain(objecting.userId);
    expect(after).toContain(consenting.userId);
    const cli = await runCliJson(['analytics', 'usage', '--day', new Date().toISOString().slice(0, 10)], dsrEnv(config));
    expect(cli.map((r: { user_id: string }) => r.user_id)).not.toContain(restricted.userId);
    // Billing is not processing they can opt out of: their usage still settles.
    const settled = await settleAccountUsage(db, restricted.accountId, { limit: 100, overdraftAllowance: new Money(1_000) });
    expect(settled.events).toBe(2);
    const consents = await db('consent_records').where({ user_id: consenting.userId }).orderBy('id');
    expect(consents.map((c) => c.granted)).toEqual([true, false]);
    expect((await db('users').where({ id: consenting.userId }).first()).marketing_consent).toBe(false);
  });

  it('payload: answered "not retained" with the providers the traffic went to', async () => {
    const config = dsrConfig();
    const p = await person();
    await withTestWorker(config, db, async () => {
      const svc = privacyService({ db, clock: systemClock, config, client: suite.client, taskQueue: config.temporal.taskQueue });
      const { id } = await svc.create({ type: 'payload', email: p.email }, 'staff:test');
      await svc.verify(id, { method: 'document', note: 'passport' }, 'staff:test');
      expect(await result(id)).toMatchObject({ status: 'completed', refusals: [] });
      const r = await db('dsr_requests').where({ id }).first();
      expect(r.response.payload).toEqual({ retained: false, providers: [p.provider] });
    });
  });
});

describe('data-subject requests: the clock, refusals and withdrawal', () => {
  it('an unverified request is refused on identity_not_verified after the wait, with the right to complain', async () => {
    const config = dsrConfig({ DSR_VERIFICATION_WAIT_S: '2' });
    const p = await person();
    await withTestWorker(config, db, async () => {
      const { id } = await privacyService({ db, clock: systemClock, config, client: suite.client, taskQueue: config.temporal.taskQueue }).create({ type: 'access', email: p.email }, 'staff:test');
      expect(await result(id)).toMatchObject({ status: 'refused', refusals: [{ item: '*', ground: 'identity_not_verified' }] });
      const answer = mailbox(config).find((m) => m.to === p.email && /refused/.test(m.subject))!;
      expect(answer.body).toContain('we could not verify your identity');
      expect(answer.body).toContain('supervisory authority');
      expect(await db('dsr_exports').where({ request_id: id })).toEqual([]);
    });
  });

  it('extends once, within the first month, telling the subject why; a second extension is refused', async () => {
    const config = dsrConfig();
    const p = await person();
    const admin = await adminServer(config);
    try {
      await withTestWorker(config, db, async () => {
        const created = await admin.call('POST', '/privacy/dsr', { type: 'access', email: p.email, jurisdiction: 'gdpr' });
        expect(created.status).toBe(201);
        const id = created.body.id as string;
        const before = await db('dsr_requests').where({ id }).first();
        expect((await admin.call('POST', `/privacy/dsr/${id}/extend`, { reason: 'many requests at once' })).status).toBe(200);
        const after = await untilTrue(
          async () => {
            const r = await db('dsr_requests').where({ id }).first();
            return r.extended ? r : null;
          },
          { timeoutMs: 15_000, message: 'the extension to be recorded' },
        );
        const months = (a: string, b: string) => (Number(b.slice(0, 4)) - Number(a.slice(0, 4))) * 12 + Number(b.slice(5, 7)) - Number(a.slice(5, 7));
        expect(months(before.due_date, after.due_date)).toBe(2);
        const again = await admin.call('POST', `/privacy/dsr/${id}/extend`, { reason: 'still many requests' });
        expect(again.status).toBe(409);
        expect(again.body.detail).toMatch(/already extended/);
        await untilTrue(() => mailbox(config).find((m) => m.to === p.email && /more time/.test(m.subject)), { timeoutMs: 15_000, message: 'the subject to be told of the extension' });
        const state = (await suite.client.workflow.getHandle(`dsr:${id}`).query('dsrStatus')) as DsrState;
        expect(state).toMatchObject({ extended: true, dueDate: after.due_date });
        expect((await admin.call('POST', `/privacy/dsr/${id}/withdraw`)).status).toBe(200);
        expect(await result(id)).toMatchObject({ status: 'withdrawn' });
      });
    } finally {
      await admin.close();
    }
  });

  it('refuses with a stated ground and explanation, whole or in part', async () => {
    const config = dsrConfig();
    const env = dsrEnv(config);
    const [a, b] = [await person(), await person()];
    await withTestWorker(config, db, async () => {
      const whole = await runCliJson(['dsr', 'create', '--type', 'deletion', '--email', a.email], env);
      await runCliJson(['dsr', 'refuse', whole.id, '--ground', 'manifestly_unfounded_or_excessive', '--explanation', 'the fifth identical request this week'], env);
      expect(await result(whole.id)).toMatchObject({ status: 'refused', refusals: [{ item: '*', ground: 'manifestly_unfounded_or_excessive' }] });
      const answer = mailbox(config).find((m) => m.to === a.email && /refused/.test(m.subject))!;
      expect(answer.body).toContain('the fifth identical request this week');
      expect(answer.body).toContain('supervisory authority');
      expect((await db('users').where({ id: a.userId }).first()).erased_at).toBeNull();

      const partial = await runCliJson(['dsr', 'create', '--type', 'access', '--email', b.email], env);
      await runCliJson(['dsr', 'refuse', partial.id, '--ground', 'security', '--explanation', 'login records reveal our security monitoring', '--item', 'login_records'], env);
      await runCliJson(['dsr', 'verify', partial.id, '--method', 'document', '--note', 'passport'], env);
      expect(await result(partial.id)).toMatchObject({ status: 'partially_completed' });

      const bad = await runCli(['dsr', 'refuse', partial.id, '--ground', 'because', '--explanation', 'no reason at all'], env);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toMatch(/^error: invalid input: ground: ground must be one of identity_not_verified/);
    });
  });

  it('reminds compliance staff before the deadline and flags the request overdue, visible as one filter in Temporal', async () => {
    const config = dsrConfig({ DSR_DEADLINE_OVERRIDE_S: '3', DSR_REMINDER_BEFORE_S: '2' });
    const env = dsrEnv(config);
    const p = await person();
    await withTestWorker(config, db, async () => {
      const created = await runCliJson(['dsr', 'create', '--type', 'access', '--email', p.email], env);
      // The deadline is 3 s after filing; the flag follows it within seconds.
      await untilTrue(async () => (await db('dsr_requests').where({ id: created.id }).first()).overdue, { timeoutMs: 15_000, message: 'the request to be flagged overdue' });
      // The flag is set, then staff are told: wait for the second message.
      const staffMail = await untilTrue(
        () => {
          const mail = mailbox(config).filter((m) => m.to === config.dsr.complianceEmail && m.subject.includes(created.id));
          return mail.length >= 2 ? mail : null;
        },
        { timeoutMs: 15_000, message: 'staff to get the reminder and the overdue mail' },
      );
      expect(staffMail.map((m) => m.subject.split(':')[0])).toEqual(['Reminder', 'OVERDUE']);
      const overdue = await runCliJson(['dsr', 'list', '--overdue'], env);
      expect(overdue.map((r: { id: string }) => r.id)).toContain(created.id);
      const found = await untilTrue(
        async () => {
          const ids: string[] = [];
          for await (const w of suite.client.workflow.list({ query: `DsrOverdue = true AND WorkflowId = 'dsr:${created.id}'` })) ids.push(w.workflowId);
          return ids.length ? ids : null;
        },
        { timeoutMs: 10_000, message: 'visibility to list the request as overdue' },
      );
      expect(found).toEqual([`dsr:${created.id}`]);
      await runCliJson(['dsr', 'withdraw', created.id], env);
      expect(await result(created.id)).toMatchObject({ status: 'withdrawn', overdue: true });
    });
  });

  it('refuses bad input in the interface’s own format', async () => {
    const config = dsrConfig();
    const env = dsrEnv(config);
    const r = await runCli(['dsr', 'create', '--type', 'erase-everything', '--email', 'not-an-email'], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error: invalid input: type: type must be one of access/);
    expect(r.stderr).toContain('email must be an email address');
    const c = await runCli(['dsr', 'create', '--type', 'correction', '--email', 'x@example.com'], env);
    expect(c.code).toBe(2);
    expect(c.stderr).toContain('a correction needs changes');
    const missing = await runCli(['dsr', 'show', randomUUID()], env);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^error: data-subject request .* does not exist/);
  });
});
