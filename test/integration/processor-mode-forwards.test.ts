import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accountsService } from '../../src/accounts/accounts.service';
import { systemClock } from '../../src/clock';
import { processorEmailSender, processorModeService } from '../../src/privacy/processorMode.service';
import { EMAIL_RETRY_AFTER_MS } from '../../src/privacy/processorMode.rules';
import { staffService } from '../../src/staff/staff.service';
import { runCli, runCliJson } from '../helpers/cli';
import { dsrAdminServer, mailbox, uniqueEmail, type DsrAdmin } from '../helpers/dsrStack';
import { signedInStaff } from '../helpers/staffConsole';
import { eventually } from '../helpers/eventually';
import { testConfig, testDb, testEnv } from '../helpers/env';

/**
 * Processor-mode follow-up on the real database and admin server: a failed
 * email is sent later, once; compliance staff close a forward (who, when,
 * why) and list the overdue ones; the privacy contact keeps its history; the
 * CLI does the same.
 */
const config = testConfig({ DATA_DIR: fs.mkdtempSync(path.join(os.tmpdir(), 'mixroute-pmf-')) });
const db = testDb(config);
let admin: DsrAdmin;
let billingToken: string;
let complianceToken: string;

beforeAll(async () => {
  admin = await dsrAdminServer(db, config);
  billingToken = (await staffService({ db }).createStaffToken({ role: 'billing' })).token;
  complianceToken = (await staffService({ db }).createStaffToken({ role: 'compliance' })).token;
});
afterAll(async () => {
  await admin.close();
  await db.destroy();
});

const as = (token: string) => (method: string, p: string, body?: unknown) => admin.call(method, p, body, { headers: { authorization: `Bearer ${token}` } });
const asBilling = (method: string, p: string, body?: unknown) => as(billingToken)(method, p, body);
const asCompliance = (method: string, p: string, body?: unknown) => as(complianceToken)(method, p, body);

async function customerWithContact(contact = uniqueEmail('privacy')) {
  const name = `Fwd Apps ${randomUUID().slice(0, 8)}`;
  const a = await accountsService({ db, clock: systemClock }).createAccount({ name, billingEmail: uniqueEmail('billing'), country: 'DE' });
  expect((await asBilling('POST', `/billing/accounts/${a.id}/privacy-contact`, { email: contact, reason: 'set at onboarding' })).status).toBe(200);
  return { id: a.id as string, name, contact };
}

/** The dev mailbox's messages with their outbox key (the mailer writes it into each file). */
const keyed = () => mailbox(config) as (ReturnType<typeof mailbox>[number] & { key: string })[];

/** A port nothing listens on: an SMTP_URL there fails every send. */
async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe('processor-mode emails: a failed send is retried, once', () => {
  it('stays queued when the mail server is down and goes exactly once when it is back', async () => {
    const c = await customerWithContact();
    const person = uniqueEmail('enduser');
    const failures: unknown[] = [];
    const down = processorModeService({ db, clock: systemClock, config: { ...config, mail: { ...config.mail, smtpUrl: `smtp://127.0.0.1:${await closedPort()}` } }, onSendError: (e) => failures.push(e) });
    const filed = await down.create({ type: 'access', email: person, customerAccountId: c.id }, 'staff:test');
    expect(filed).toMatchObject({ duplicate: false, outcome: 'forwarded' });
    expect(failures).toHaveLength(1);
    const keys = [`processor:${(filed as { id: string }).id}:answer`, `processor:${(filed as { id: string }).id}:forward`];
    const queued = await db('notification_outbox').whereIn('idempotency_key', keys);
    expect(queued).toHaveLength(2);
    expect(queued.every((m) => m.sent_at === null && m.body !== '')).toBe(true);
    expect(mailbox(config).filter((m) => [person, c.contact].includes(m.to))).toHaveLength(0);

    // The retry path without keys leaves fresh messages to the filing's own send.
    const up = processorEmailSender({ db, clock: systemClock, mail: config.mail });
    await up.sendQueued();
    expect((await db('notification_outbox').whereIn('idempotency_key', keys).whereNotNull('sent_at'))).toHaveLength(0);

    // The mail server is back: sent, once each, however often the sender runs.
    expect(await up.sendQueued({ keys })).toBe(2);
    expect(await up.sendQueued({ keys })).toBe(0);
    await up.sendQueued();
    const rows = await db('notification_outbox').whereIn('idempotency_key', keys);
    expect(rows.every((m) => m.sent_at !== null && m.body === '')).toBe(true);
    expect(keyed().filter((m) => m.to === person).map((m) => m.key)).toEqual([keys[0]]);
    expect(keyed().filter((m) => m.to === c.contact).map((m) => m.key)).toEqual([keys[1]]);
  });

  it('the retry path sends what has waited past the grace period', async () => {
    const person = uniqueEmail('later');
    const down = processorModeService({ db, clock: systemClock, config: { ...config, mail: { ...config.mail, smtpUrl: `smtp://127.0.0.1:${await closedPort()}` } } });
    const filed = (await down.create({ type: 'access', email: person }, 'staff:test')) as { id: string };
    const key = `processor:${filed.id}:answer`;
    expect((await db('notification_outbox').where({ idempotency_key: key }).first()).sent_at).toBeNull();
    // Queued two minutes ago (placed in the past rather than waited for).
    await db('notification_outbox').where({ idempotency_key: key }).update({ created_at: new Date(Date.now() - 2 * EMAIL_RETRY_AFTER_MS) });
    await processorEmailSender({ db, clock: systemClock, mail: config.mail }).sendQueued();
    // Sent by this call, or by a worker's dispatcher round of another test file that took it first (then into its mailbox).
    await eventually(async () => expect(await db('notification_outbox').where({ idempotency_key: key }).first()).toMatchObject({ sent_at: expect.any(Date), body: '' }), {
      timeoutMs: 10_000,
      message: 'the queued answer to be sent',
    });
    expect(keyed().filter((m) => m.key === key).length).toBeLessThanOrEqual(1);
  });

  it('never sends or marks another message of the outbox', async () => {
    const key = `pm-test-other:${randomUUID()}`;
    await db('notification_outbox').insert({ idempotency_key: key, recipient: uniqueEmail('other'), subject: 's', body: 'b', created_at: new Date(Date.now() - 3_600_000) });
    try {
      await processorEmailSender({ db, clock: systemClock, mail: config.mail }).sendQueued();
      const row = await db('notification_outbox').where({ idempotency_key: key }).first();
      expect(row).toMatchObject({ sent_at: null, body: 'b' });
      expect(keyed().filter((m) => m.key === key)).toHaveLength(0);
    } finally {
      await db('notification_outbox').where({ idempotency_key: key }).delete();
    }
  });
});

describe('closing a forward', () => {
  it('compliance staff close it with a reason; who, when and why show in the request view; twice is a conflict', async () => {
    const c = await customerWithContact();
    const r = await asCompliance('POST', '/privacy/processor-dsr', { type: 'deletion', email: uniqueEmail('caller'), customerAccountId: c.id });
    expect(r.status).toBe(201);
    const id = r.body.id as string;
    const before = await asCompliance('GET', `/privacy/processor-dsr/${id}`);
    expect(before.status).toBe(200);
    expect(before.body).toMatchObject({ id, forwardedTo: c.contact, closedAt: null, closedBy: null, closeReason: null, overdue: false });
    expect(before.body.answer).toContain('as a processor');

    const closed = await asCompliance('POST', `/privacy/processor-dsr/${id}/close`, { reason: 'customer confirmed deletion, ticket 7' });
    expect(closed.status).toBe(200);
    expect(closed.body).toMatchObject({ id, closeReason: 'customer confirmed deletion, ticket 7', closedBy: expect.stringMatching(/^staff:/) });
    expect(Date.parse(closed.body.closedAt)).not.toBeNaN();
    const row = await db('processor_forwards').where({ request_id: id }).first();
    expect(row).toMatchObject({ close_reason: 'customer confirmed deletion, ticket 7', closed_by: closed.body.closedBy });

    const again = await asCompliance('POST', `/privacy/processor-dsr/${id}/close`, { reason: 'again' });
    expect(again.status).toBe(409);
    expect(again.type).toContain('application/problem+json');
    expect((await db('processor_forwards').where({ request_id: id }).first()).close_reason).toBe('customer confirmed deletion, ticket 7');

    const queue = await asCompliance('GET', '/privacy/processor-dsr?outcome=forwarded&limit=200');
    expect(queue.body.find((x: any) => x.id === id)).toMatchObject({ closedBy: closed.body.closedBy, overdue: false });
  });

  it('overdue forwards (deadline passed, not closed) are listed for staff until closed', async () => {
    const c = await customerWithContact();
    // Filed two months ago: its one-month deadline has passed.
    const past = new Date(Date.now() - 62 * 86_400_000);
    const earlier = processorModeService({ db, clock: { now: () => past }, config, mailer: { send: async () => {} } });
    const old = (await earlier.create({ type: 'access', email: uniqueEmail('late'), jurisdiction: 'gdpr', customerAccountId: c.id }, 'staff:test')) as { id: string };
    const fresh = (await asCompliance('POST', '/privacy/processor-dsr', { type: 'objection', email: uniqueEmail('fresh'), customerAccountId: c.id })).body as { id: string };

    const overdue = await asCompliance('GET', '/privacy/processor-dsr?overdue=true&limit=200');
    expect(overdue.status).toBe(200);
    const ids = overdue.body.map((x: any) => x.id);
    expect(ids).toContain(old.id);
    expect(ids).not.toContain(fresh.id);
    expect(overdue.body.every((x: any) => x.overdue === true && x.closedAt === null)).toBe(true);

    expect((await asCompliance('POST', `/privacy/processor-dsr/${old.id}/close`, { reason: 'customer answered late' })).status).toBe(200);
    const after = await asCompliance('GET', '/privacy/processor-dsr?overdue=true&limit=200');
    expect(after.body.map((x: any) => x.id)).not.toContain(old.id);
    expect((await asCompliance('GET', `/privacy/processor-dsr/${old.id}`)).body).toMatchObject({ overdue: false, closeReason: 'customer answered late' });
  });
});

describe('privacy contact history', () => {
  it('keeps every change with who, why, before, after and when, newest first', async () => {
    const first = uniqueEmail('privacy');
    const c = await customerWithContact(first);
    const second = uniqueEmail('dpo');
    expect((await asBilling('POST', `/billing/accounts/${c.id}/privacy-contact`, { email: second, reason: 'new DPO, ticket 9' })).status).toBe(200);
    const view = await asCompliance('GET', `/billing/accounts/${c.id}/privacy-contact`);
    expect(view.status).toBe(200);
    expect(view.body).toMatchObject({ email: second, reason: 'new DPO, ticket 9' });
    expect(view.body.changes).toHaveLength(2);
    expect(view.body.changes[0]).toMatchObject({ emailBefore: first, emailAfter: second, reason: 'new DPO, ticket 9', changedBy: expect.stringMatching(/^staff:/) });
    expect(view.body.changes[1]).toMatchObject({ emailBefore: null, emailAfter: first, reason: 'set at onboarding' });
    expect(Date.parse(view.body.changes[0].changedAt)).toBeGreaterThanOrEqual(Date.parse(view.body.changes[1].changedAt));
  });
});

describe('the CLI', () => {
  it('sets and shows a privacy contact, lists, shows and closes requests', async () => {
    const env = testEnv(config);
    const a = await accountsService({ db, clock: systemClock }).createAccount({ name: `Cli Apps ${randomUUID().slice(0, 8)}`, billingEmail: uniqueEmail('billing'), country: 'DE' });
    const contact = uniqueEmail('privacy');
    const set = await runCliJson(['accounts', 'privacy-contact', 'set', a.id, '--email', contact, '--reason', 'customer asked, ticket 11'], env);
    expect(set).toMatchObject({ email: contact, setBy: expect.stringMatching(/^cli:/), changes: [{ emailBefore: null, emailAfter: contact }] });
    expect(await runCliJson(['accounts', 'privacy-contact', 'show', a.id], env)).toMatchObject({ email: contact });

    const r = (await asCompliance('POST', '/privacy/processor-dsr', { type: 'access', email: uniqueEmail('cli'), customerAccountId: a.id })).body as { id: string; reference: string };
    const listed = await runCliJson(['privacy', 'processor-requests', 'list', '--outcome', 'forwarded', '--limit', '200'], env);
    expect(listed.find((x: any) => x.id === r.id)).toMatchObject({ forwardedTo: contact, closedAt: null });
    const shown = await runCli(['privacy', 'processor-requests', 'show', r.id], env);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toContain(r.reference);
    expect(shown.stdout).toContain(contact);

    const closed = await runCliJson(['privacy', 'processor-requests', 'close', r.id, '--reason', 'handled by phone'], env);
    expect(closed).toMatchObject({ id: r.id, closeReason: 'handled by phone', closedBy: expect.stringMatching(/^cli:/) });
    const twice = await runCli(['privacy', 'processor-requests', 'close', r.id, '--reason', 'again'], env);
    expect(twice.code).toBe(1);
    expect(twice.stderr).toMatch(/closed already/);
    expect((await runCli(['privacy', 'processor-requests', 'close', r.id], env)).code).toBe(2);
  });
});

describe('the staff console', () => {
  it('lists processor-mode requests with their forward state on the rights requests page, markup shown as text', async () => {
    const { request } = await signedInStaff(db, admin.url, 'compliance');

    const c = await customerWithContact();
    const closed = (await asCompliance('POST', '/privacy/processor-dsr', { type: 'access', email: uniqueEmail('shown'), customerAccountId: c.id })).body as { id: string; reference: string };
    expect((await asCompliance('POST', `/privacy/processor-dsr/${closed.id}/close`, { reason: 'customer answered' })).status).toBe(200);
    const markup = `<img src=x onerror=alert(1)> ${randomUUID().slice(0, 8)}`;
    expect((await admin.call('POST', '/privacy/processor-requests', { type: 'access', email: uniqueEmail('xss'), customerName: markup })).status).toBe(202);

    const page = await request('GET', '/console/dsr');
    expect(page.status).toBe(200);
    expect(page.body).toContain("Requests about a customer's API traffic");
    const row = page.body.split('<tr').find((r) => r.includes(closed.reference));
    expect(row).toBeDefined();
    expect(row).toContain(c.contact);
    expect(row).toContain('closed');
    expect(row).toContain('customer answered');
    expect(page.body).not.toContain(markup);
    expect(page.body).toContain(markup.replace('<', '&lt;').replace('>', '&gt;'));
  });
});
