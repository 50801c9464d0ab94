import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accountsService } from '../../src/accounts/accounts.service';
import { createAdminApp } from '../../src/admin/app';
import { systemClock } from '../../src/clock';
import { policyVersionsService } from '../../src/policyVersions/policyVersions.service';
import { collectSubjectData, emailHash, eraseSubject, findSubject } from '../../src/privacy/privacy.data';
import { workflowIds } from '../../src/temporal/conventions';
import type { PolicyPublishedResult } from '../../workflows/messages';
import { browser, customerWithPassword, hidden, signIn, signedIn, type Browser } from '../helpers/customerConsole';
import { silentLogger, testConfig, testDb } from '../helpers/env';
import { serve } from '../helpers/servers';
import { signedInStaff } from '../helpers/staffConsole';
import { testActivities, workflowBundle } from '../helpers/worker';

/**
 * Privacy policy changes end to end (issue 26; docs/customer-console.md#policy-changes),
 * with the real admin server, worker, Temporal and PostgreSQL: compliance staff
 * publish a material version on the console page; the `policy-published:{version}`
 * workflow queues and sends exactly one email to every owner of every open
 * account (not to other members, removed owners, erased owners or closed
 * accounts); a signed-in customer sees the notice on every page until they
 * acknowledge it; a non-material version shows nothing and emails nobody; a
 * second run of the workflow queues and sends nothing. The run is recorded as
 * test/replay/histories/policyPublished.json (UPDATE_REPLAY_FIXTURES=1) and
 * replayed here and in test/integration/workflows.test.ts.
 *
 * Other test files share the database (their owners get this file's emails
 * too), so every assertion is about this file's users and versions.
 */
const { historyFromJSON, historyToJSON } = createRequire(import.meta.url)('@temporalio/common/lib/proto-utils') as typeof import('@temporalio/common/lib/proto-utils');
const HISTORY = fileURLToPath(new URL('../replay/histories/policyPublished.json', import.meta.url));

const config = testConfig();
const db = testDb(config);
const taskQueue = config.temporal.taskQueue;
const tag = randomUUID().slice(0, 8);
const PASSWORD = 'correct horse battery staple';
const MATERIAL = `t${tag}-material`;
const MINOR = `t${tag}-minor`;
let connection: NativeConnection;
let clientConnection: Connection;
let client: Client;
let worker: Worker;
let running: Promise<void>;
let base: string;
let close: () => Promise<void>;

beforeAll(async () => {
  connection = await NativeConnection.connect({ address: config.temporal.address! });
  worker = await Worker.create({ connection, namespace: config.temporal.namespace, taskQueue, workflowBundle: await workflowBundle(), activities: testActivities(config, db) });
  running = worker.run();
  clientConnection = await Connection.connect({ address: config.temporal.address! });
  client = new Client({ connection: clientConnection, namespace: config.temporal.namespace });
  const app = createAdminApp({ db, billing: config.billing, config, clock: systemClock, logger: silentLogger, readiness: {}, readyCheckTimeoutMs: 1000, temporal: { client, taskQueue } });
  ({ url: base, close } = await serve(app));
});

afterAll(async () => {
  await close?.();
  worker?.shutdown();
  await running;
  await connection?.close();
  await clientConnection?.close();
  await db.destroy();
});

const accounts = accountsService({ db, clock: systemClock, config });

/** A user of `accountId` with a console role, and what else their row says. */
async function member(accountId: string, role: 'owner' | 'admin' | 'developer' | 'billing', extra: Record<string, unknown> = {}) {
  const email = `${role}-${randomUUID().slice(0, 8)}@example.com`;
  const u = await accounts.createUser({ accountId, name: `${role} ${tag}`, email });
  await db('users').where({ id: u.id }).update({ console_role: role, ...extra });
  return { id: u.id as string, email };
}

async function account(name: string) {
  return (await accounts.createAccount({ name: `${name} ${tag}`, plan: 'prepaid', billingEmail: `billing-${randomUUID().slice(0, 8)}@example.com` })).id as string;
}

const mails = (version: string) => db('notification_outbox').whereRaw('starts_with(idempotency_key, ?)', [`policy:${version}:`]);

/** The notice region of a customer page, or null. */
const notice = (html: string) => /<section class="notice policy-notice"[\s\S]*?<\/section>/.exec(html)?.[0] ?? null;

async function customer(): Promise<{ b: Browser; userId: string }> {
  const c = await customerWithPassword(db, config, PASSWORD);
  const b = browser(base);
  expect(signedIn(await signIn(b, c.email, PASSWORD))).toBe(true);
  return { b, userId: c.userId };
}

async function publish(staff: Awaited<ReturnType<typeof signedInStaff>>, form: Record<string, string>) {
  const page = await staff.get('/console/privacy-policy');
  expect(page.status).toBe(200);
  return staff.request('POST', '/console/privacy-policy', { _csrf: hidden(page.body, '_csrf'), ...form });
}

describe('a material privacy policy version', () => {
  it('emails every owner of every open account once, shows signed-in customers a notice until they acknowledge it, and a re-run changes nothing', async () => {
    // Owners of two accounts, the other members, and the owners who must not be emailed.
    const a1 = await account('Policy One');
    const a2 = await account('Policy Two');
    const closed = await account('Policy Closed');
    await db('accounts').where({ id: closed }).update({ status: 'closed' });
    const owners = [await member(a1, 'owner'), await member(a1, 'owner'), await member(a2, 'owner')];
    const notOwners = [await member(a1, 'developer'), await member(a2, 'billing'), await member(a2, 'admin')];
    const notMailed = [await member(closed, 'owner'), await member(a2, 'owner', { console_removed_at: new Date() }), await member(a1, 'owner', { erased_at: new Date() })];

    // Enough owners for more than one page of the workflow (500 owners a page, 500 emails a batch).
    const many = await account('Policy Many');
    await db.raw(
      `INSERT INTO users (account_id, name, email, console_role) SELECT ?, 'Owner ' || g, 'many-' || g || '-' || ? || '@example.com', 'owner' FROM generate_series(1, 500) g`,
      [many, tag],
    );

    const reader = await customer();
    // Before: no notice.
    expect(notice((await reader.b.get('/app')).body)).toBeNull();

    const staff = await signedInStaff(db, base, 'compliance');
    const posted = await publish(staff, {
      version: MATERIAL,
      title: `New sub-processors ${tag}`,
      summary: `We now route traffic through one more provider.\n\nYour rights are unchanged ${tag}.`,
      url: 'https://mixroute.example/privacy/v2',
      material: '1',
    });
    expect(posted.status).toBe(303);
    expect(posted.location).toBe('/console/privacy-policy?msg=policy_version_published_material');
    const listed = await staff.get('/console/privacy-policy?msg=policy_version_published_material');
    expect(listed.body).toContain(MATERIAL);
    expect(listed.body).toContain('Material version published');

    const result = await client.workflow.getHandle<() => Promise<PolicyPublishedResult>>(workflowIds.policyPublished(MATERIAL)).result();
    expect(result.owners).toBeGreaterThanOrEqual(owners.length + 500);
    expect(result.queued).toBe(result.owners);
    // Every queued email is sent (below, for this test's owners); another file may erase an owner, and its queued mail with it, meanwhile.
    expect(result.sent).toBeLessThanOrEqual(result.queued);

    // Each owner: one email, sent, naming the version, title, summary and link; nobody else of these accounts.
    const rows = await mails(MATERIAL);
    for (const o of owners) {
      const mine = rows.filter((r) => r.recipient === o.email);
      expect(mine, o.email).toHaveLength(1);
      expect(mine[0].idempotency_key).toBe(`policy:${MATERIAL}:${o.id}`);
      expect(mine[0].sent_at).not.toBeNull();
      const file = JSON.parse(fs.readFileSync(path.join(config.mail.mailboxDir, `${String(mine[0].id).padStart(8, '0')}.json`), 'utf8')) as { to: string; subject: string; body: string };
      expect(file.to).toBe(o.email);
      expect(file.subject).toContain(`New sub-processors ${tag}`);
      expect(file.subject).toContain(MATERIAL);
      expect(file.body).toContain(`Your rights are unchanged ${tag}.`);
      expect(file.body).toContain('https://mixroute.example/privacy/v2');
    }
    expect(rows.filter((r) => r.recipient.startsWith('many-') && r.recipient.endsWith(`-${tag}@example.com`) && r.sent_at !== null)).toHaveLength(500);
    for (const u of [...notOwners, ...notMailed]) expect(rows.filter((r) => r.recipient === u.email || r.idempotency_key.endsWith(u.id)), u.email).toHaveLength(0);

    // The customer sees the notice on every page until acknowledging it.
    let csrf = '';
    for (const p of ['/app', '/app/security', '/app/privacy', '/app/usage']) {
      const page = await reader.b.get(p);
      expect(page.status, p).toBe(200);
      const n = notice(page.body);
      expect(n, p).not.toBeNull();
      expect(n).toContain(`New sub-processors ${tag}`);
      expect(n).toContain(`Your rights are unchanged ${tag}.`);
      expect(n).toContain('href="https://mixroute.example/privacy/v2"');
      expect(n).toContain('I have read it');
      csrf = hidden(n!, '_csrf');
    }
    const ack = await reader.b.post('/app/policy/acknowledge', { _csrf: csrf, version: MATERIAL, back: '/app/usage' });
    expect(ack.status).toBe(303);
    expect(ack.location).toBe('/app/usage?msg=policy_acknowledged');
    const after = await reader.b.get(ack.location);
    expect(after.body).toContain('we recorded that you read the new privacy policy');
    for (const p of ['/app', '/app/security', '/app/privacy']) expect(notice((await reader.b.get(p)).body), p).toBeNull();
    // Twice is once.
    expect((await reader.b.post('/app/policy/acknowledge', { _csrf: csrf, version: MATERIAL })).status).toBe(303);
    expect(await db('policy_acknowledgements').where({ user_id: reader.userId })).toHaveLength(1);
    // Another customer has not acknowledged it: they still see it.
    expect(notice((await (await customer()).b.get('/app')).body)).toContain(MATERIAL);

    // The same version again is refused with a message; nothing changes.
    const again = await publish(staff, { version: MATERIAL, title: 'Again', summary: 'Again' });
    expect(again.status).toBe(409);
    expect(again.body).toContain(`version ${MATERIAL} is already published`);
    expect((await db('privacy_policy_versions').where({ version: MATERIAL }).first()).title).toBe(`New sub-processors ${tag}`);

    // A second run (a redo after a crash) queues and sends nothing twice. Other test files add, remove and
    // erase owners meanwhile (the database is shared), so what is checked is this test's own owners' mail.
    const ownEmails = new Set([...owners.map((o) => o.email), ...Array.from({ length: 500 }, (_, i) => `many-${i + 1}-${tag}@example.com`)]);
    const ownMails = async () => (await mails(MATERIAL)).filter((r) => ownEmails.has(r.recipient));
    expect(await ownMails()).toHaveLength(ownEmails.size);
    const rerun = await client.workflow.execute('policyPublished', { taskQueue, workflowId: `${workflowIds.policyPublished(MATERIAL)}:rerun-${tag}`, args: [{ version: MATERIAL }] });
    expect(rerun.owners).toBeGreaterThanOrEqual(owners.length + 500);
    expect(rerun.sent).toBeLessThanOrEqual(rerun.queued);
    expect(await ownMails()).toHaveLength(ownEmails.size);
    // Keyset paging 200 owners at a time goes through every owner, each once.
    const paged = policyVersionsService({ db, clock: systemClock, ownerPage: 200 });
    let cursor: string | null = null;
    let seen = 0;
    let pages = 0;
    do {
      const p: { owners: number; queued: number; next: string | null } = await paged.queueOwnerEmails(MATERIAL, cursor);
      seen += p.owners;
      cursor = p.next;
      pages++;
    } while (cursor !== null);
    expect(seen).toBeGreaterThanOrEqual(owners.length + 500);
    expect(pages).toBeGreaterThan(2);
    const all = await ownMails();
    expect(new Set(all.map((r) => r.recipient.toLowerCase())).size).toBe(ownEmails.size);
    expect(all).toHaveLength(ownEmails.size);

    // The run replays against today's workflow code, and is the recorded fixture when asked.
    const history = await client.workflow.getHandle(workflowIds.policyPublished(MATERIAL)).fetchHistory();
    await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history, workflowIds.policyPublished(MATERIAL));
    if (process.env.UPDATE_REPLAY_FIXTURES) fs.writeFileSync(HISTORY, historyToJSON(history));
  });

  it('the recorded history replays', async () => {
    await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, historyFromJSON(JSON.parse(fs.readFileSync(HISTORY, 'utf8'))), 'policy-published-replay');
  });
});

describe('a version that is not material', () => {
  it('shows no notice and emails nobody', async () => {
    const a = await account('Policy Minor');
    const o = await member(a, 'owner');
    const reader = await customer();
    // Whatever material version came before, acknowledged: nothing to show.
    const before = notice((await reader.b.get('/app')).body);
    if (before) {
      expect((await reader.b.post('/app/policy/acknowledge', { _csrf: hidden(before, '_csrf'), version: hidden(before, 'version') })).status).toBe(303);
    }
    expect(notice((await reader.b.get('/app')).body)).toBeNull();

    const staff = await signedInStaff(db, base, 'admin');
    const posted = await publish(staff, { version: MINOR, title: `Typo fixes ${tag}`, summary: 'Wording only.' });
    expect(posted.location).toBe('/console/privacy-policy?msg=policy_version_published');
    expect(await db('privacy_policy_versions').where({ version: MINOR, material: false }).first()).toBeDefined();

    for (const p of ['/app', '/app/security']) expect(notice((await reader.b.get(p)).body), p).toBeNull();
    expect(await mails(MINOR)).toHaveLength(0);
    expect((await mails(MINOR)).filter((r) => r.recipient === o.email)).toHaveLength(0);
    await expect(client.workflow.getHandle(workflowIds.policyPublished(MINOR)).describe()).rejects.toThrow(/not found/i);
    // Its emails cannot be started either.
    await expect(policyVersionsService({ db, clock: systemClock, temporal: { client, taskQueue } }).resumeEmails(MINOR)).rejects.toThrow(/not material/);
  });
});

describe('acknowledgements are personal data', () => {
  it('the access answer lists them; erasure deletes them', async () => {
    const c = await customerWithPassword(db, config, PASSWORD);
    await policyVersionsService({ db, clock: systemClock }).acknowledge(c.userId, MATERIAL);
    const subject = await findSubject(db, c.email, null);
    const held = await collectSubjectData(db, subject, emailHash(c.email), { portable: false });
    expect(held.policy_acknowledgements).toEqual([{ user_id: c.userId, version: MATERIAL, at: expect.stringMatching(/^\d{4}-/) }]);

    const [req] = await db('dsr_requests')
      .insert({ type: 'deletion', channel: 'staff', subject_email_hash: emailHash(c.email), jurisdiction: 'gdpr', due_date: '2027-01-01', due_at: new Date(), extension_notice_by: new Date(), created_by: 'test' })
      .returning(['id']);
    const counts = await db.transaction((trx) => eraseSubject(trx, req.id, subject));
    expect(counts).toEqual(expect.arrayContaining([expect.objectContaining({ category: 'policy_acknowledgements', action: 'erased', rows: 1 })]));
    expect(await db('policy_acknowledgements').where({ user_id: c.userId })).toHaveLength(0);
  });
});
