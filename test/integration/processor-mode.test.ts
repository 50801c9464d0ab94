import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accountsService } from '../../src/accounts/accounts.service';
import { systemClock } from '../../src/clock';
import { staffService } from '../../src/staff/staff.service';
import { testConfig, testDb } from '../helpers/env';
import { dsrAdminServer, mailbox, uniqueEmail, type DsrAdmin } from '../helpers/dsrStack';

/**
 * Processor-mode requests end to end on the admin server and the real
 * database: billing staff set a customer's privacy contact; a person who is
 * not a user files on the public form naming the customer; the request is
 * forwarded once, with its deadline, its audit row and the outbox emails.
 */
const config = testConfig({ DATA_DIR: fs.mkdtempSync(path.join(os.tmpdir(), 'mixroute-pm-')) });
const db = testDb(config);
let admin: DsrAdmin;
let billingToken: string;

beforeAll(async () => {
  admin = await dsrAdminServer(db, config);
  billingToken = (await staffService({ db }).createStaffToken({ role: 'billing' })).token;
});
afterAll(async () => {
  await admin.close();
  await db.destroy();
});

const asBilling = (method: string, p: string, body: unknown) =>
  admin.call(method, p, body, { headers: { authorization: `Bearer ${billingToken}` } });

async function customer(name = `Acme Apps ${randomUUID().slice(0, 8)}`) {
  const a = await accountsService({ db, clock: systemClock }).createAccount({ name, billingEmail: uniqueEmail('billing'), country: 'DE' });
  return { id: a.id as string, name };
}
/** What reached `recipient`: the outbox rows (sent, body cleared) and the dev mailbox's copies. */
async function delivered(recipient: string) {
  const rows = await db('notification_outbox').where({ recipient }).orderBy('id');
  expect(rows.every((r) => r.sent_at !== null && r.body === '')).toBe(true);
  const mails = mailbox(config).filter((m) => m.to === recipient);
  expect(mails).toHaveLength(rows.length);
  return mails;
}

describe('processor-mode requests', () => {
  it('billing staff set the privacy contact, audited with who, why and when', async () => {
    const c = await customer();
    const r = await asBilling('POST', `/billing/accounts/${c.id}/privacy-contact`, { email: 'privacy@acme.example', reason: 'customer asked by email, ticket 42' });
    expect(r.status).toBe(200);
    const row = await db('account_privacy_contacts').where({ account_id: c.id }).first();
    expect(row).toMatchObject({ email: 'privacy@acme.example', reason: 'customer asked by email, ticket 42' });
    expect(row.set_by).toMatch(/\S/);
    expect(row.set_at).toBeInstanceOf(Date);
    // compliance staff may not set it
    expect((await admin.call('POST', `/billing/accounts/${c.id}/privacy-contact`, { email: 'x@y.example', reason: 'nope' }, { staff: true })).status).toBe(403);
  });

  it('forwards a request naming the customer once, with its deadline, and tells the person to whom', async () => {
    const c = await customer();
    const contact = uniqueEmail('privacy');
    await asBilling('POST', `/billing/accounts/${c.id}/privacy-contact`, { email: contact, reason: 'set at onboarding' });
    const person = uniqueEmail('enduser');
    const r = await admin.call('POST', '/privacy/processor-requests', { type: 'access', email: person, jurisdiction: 'gdpr', customerName: c.name });
    expect(r.status).toBe(202);
    expect(r.body).toEqual({ status: 'received', next: expect.any(String) });

    const req = await db('processor_requests').where({ subject_email: person }).first();
    expect(req).toMatchObject({ outcome: 'forwarded', account_id: c.id, channel: 'subject', type: 'access' });
    expect(req.answer).toContain('as a processor');
    expect(req.answer).toContain('never kept its content');
    expect(req.answer).toContain(c.name);
    expect(req.answer).not.toContain(contact);

    const fwd = await db('processor_forwards').where({ request_id: req.id });
    expect(fwd).toHaveLength(1);
    expect(fwd[0]).toMatchObject({ account_id: c.id, forwarded_to: contact });
    // GDPR: one calendar month from receipt
    const due = new Date(fwd[0].due_at).getTime() - new Date(fwd[0].forwarded_at).getTime();
    expect(due).toBeGreaterThan(27 * 86_400_000);
    expect(due).toBeLessThan(32 * 86_400_000);

    const toCustomer = await delivered(contact);
    expect(toCustomer).toHaveLength(1);
    expect(toCustomer[0]!.body).toContain(req.reference);
    expect(toCustomer[0]!.body).toContain(person);
    expect(toCustomer[0]!.body).toContain('access');
    const toPerson = await delivered(person);
    expect(toPerson).toHaveLength(1);
    expect(toPerson[0]!.body).toBe(req.answer);

    // Filing again while the forward is open forwards nothing more.
    await admin.call('POST', '/privacy/processor-requests', { type: 'access', email: person, customerName: c.name });
    expect(await db('processor_forwards').where({ account_id: c.id })).toHaveLength(1);
    expect(await delivered(contact)).toHaveLength(1);

    const queue = await admin.call('GET', '/privacy/processor-dsr?outcome=forwarded&limit=50', undefined, { staff: true });
    const mine = queue.body.find((x: any) => x.id === req.id);
    expect(mine).toMatchObject({ forwardedTo: contact, accountId: c.id, overdue: false, needsStaff: false });
    expect(mine.dueAt).toBe(new Date(fwd[0].due_at).toISOString());
  });

  it('staff take a request by account id and get the answer back', async () => {
    const c = await customer();
    const contact = uniqueEmail('privacy');
    await asBilling('POST', `/billing/accounts/${c.id}/privacy-contact`, { email: contact, reason: 'set at onboarding' });
    const r = await admin.call('POST', '/privacy/processor-dsr', { type: 'deletion', email: uniqueEmail('caller'), customerAccountId: c.id }, { staff: true });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ outcome: 'forwarded', forward: { forwardedTo: contact } });
  });

  it('not found and no contact: the person is told so, and staff see it in the queue', async () => {
    const withoutContact = await customer();
    const a = uniqueEmail('nf'), b = uniqueEmail('nc');
    await admin.call('POST', '/privacy/processor-requests', { type: 'access', email: a, customerName: `No Such Customer ${randomUUID()}` });
    await admin.call('POST', '/privacy/processor-requests', { type: 'access', email: b, customerName: withoutContact.name });
    const ra = await db('processor_requests').where({ subject_email: a }).first();
    const rb = await db('processor_requests').where({ subject_email: b }).first();
    expect(ra.outcome).toBe('customer_not_found');
    expect(rb.outcome).toBe('no_contact');
    expect(ra.answer.replace(ra.reference, '')).toBe(rb.answer.replace(rb.reference, ''));
    expect(ra.answer).toContain('could not forward');
    expect(await db('processor_forwards').whereIn('request_id', [ra.id, rb.id])).toHaveLength(0);
    expect((await delivered(a))[0]!.body).toBe(ra.answer);
    const queue = await admin.call('GET', '/privacy/processor-dsr?limit=200', undefined, { staff: true });
    expect(queue.body.filter((x: any) => [ra.id, rb.id].includes(x.id)).map((x: any) => x.needsStaff)).toEqual([true, true]);
  });
});
