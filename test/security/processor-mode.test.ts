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
 * Processor-mode intake is public: nobody can make us mail an address other
 * than the account's stored contact (plus their own answer), inputs are
 * bounded, and the public answer does not tell whether an account exists.
 */
// Many filings from one address in this file: the per-source limit (tested with the DSR intake) is raised.
const config = testConfig({ DATA_DIR: fs.mkdtempSync(path.join(os.tmpdir(), 'mixroute-pm-sec-')), DSR_INTAKE_RPM: '1000' });
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

async function customerWithContact() {
  const name = `Sec Apps ${randomUUID().slice(0, 8)}`;
  const a = await accountsService({ db, clock: systemClock }).createAccount({ name, billingEmail: uniqueEmail('billing'), country: 'DE' });
  const contact = uniqueEmail('privacy');
  const r = await admin.call('POST', `/billing/accounts/${a.id}/privacy-contact`, { email: contact, reason: 'onboarding' }, { headers: { authorization: `Bearer ${billingToken}` } });
  expect(r.status).toBe(200);
  return { id: a.id as string, name, contact };
}
const file = (body: unknown) => admin.call('POST', '/privacy/processor-requests', body);

describe('processor-mode intake: security', () => {
  it('only the stored contact receives a forward: fields naming another recipient are refused', async () => {
    const c = await customerWithContact();
    const person = uniqueEmail('p');
    const attacker = uniqueEmail('victim');
    for (const extra of [{ forwardTo: attacker }, { contact: attacker }, { recipient: attacker }, { message: `mail ${attacker}` }]) {
      const r = await file({ type: 'access', email: person, customerName: c.name, ...extra });
      expect(r.status).toBe(400);
    }
    expect(await db('notification_outbox').where({ recipient: attacker })).toHaveLength(0);
    const ok = await file({ type: 'access', email: person, customerName: c.name });
    expect(ok.status).toBe(202);
    const sent = await db('notification_outbox').where('idempotency_key', 'like', 'processor:%').whereIn('recipient', [c.contact, person, attacker]);
    expect(sent.map((m) => m.recipient).sort()).toEqual([c.contact, person].sort());
    expect(mailbox(config).filter((m) => m.to === attacker)).toHaveLength(0);
    // the forward carries the reference, type and the person's address, and nothing else they could type
    const fwd = mailbox(config).find((m) => m.to === c.contact)!;
    expect(fwd.body).toContain(person);
    expect(fwd.body).not.toContain(c.name);
  });

  it('bounds every input', async () => {
    const email = uniqueEmail('b');
    expect((await file({ type: 'access', email, customerName: 'x'.repeat(201) })).status).toBe(400);
    expect((await file({ type: 'access', email: `${'a'.repeat(250)}@example.com` })).status).toBe(400);
    expect((await file({ type: 'nonsense', email })).status).toBe(400);
    expect((await file({ type: 'access', email, customerAccountId: 'not-a-uuid' })).status).toBe(400);
    expect((await admin.call('POST', '/privacy/processor-requests', 'x'.repeat(70_000) as unknown)).status).toBe(413);
    expect(await db('processor_requests').where({ subject_email: email })).toHaveLength(0);
  });

  it('an account id that does not exist reads like one without a contact: no error, no hint', async () => {
    const noContact = await accountsService({ db, clock: systemClock }).createAccount({ name: `Quiet ${randomUUID().slice(0, 8)}`, billingEmail: uniqueEmail('b'), country: 'DE' });
    const a = uniqueEmail('ghost'), b = uniqueEmail('quiet');
    const ra = await file({ type: 'access', email: a, customerAccountId: randomUUID() });
    const rb = await file({ type: 'access', email: b, customerAccountId: noContact.id });
    expect(ra.status).toBe(202);
    expect(rb.status).toBe(202);
    expect(ra.body).toEqual(rb.body);
    const ma = mailbox(config).find((m) => m.to === a)!;
    const mb = mailbox(config).find((m) => m.to === b)!;
    const strip = (s: string) => s.replace(/P-[0-9A-F]{12}/g, 'REF');
    expect(strip(ma.body)).toBe(strip(mb.body));
    expect(strip(ma.subject)).toBe(strip(mb.subject));
  });

  it('a contact must be a bounded email address, and only for an account that exists', async () => {
    const auth = { headers: { authorization: `Bearer ${billingToken}` } };
    const c = await customerWithContact();
    expect((await admin.call('POST', `/billing/accounts/${c.id}/privacy-contact`, { email: 'not an email', reason: 'why' }, auth)).status).toBe(400);
    expect((await admin.call('POST', `/billing/accounts/${c.id}/privacy-contact`, { email: `${'a'.repeat(250)}@x.example`, reason: 'why' }, auth)).status).toBe(400);
    expect((await admin.call('POST', `/billing/accounts/${c.id}/privacy-contact`, { email: 'a@b.example' }, auth)).status).toBe(400);
    expect((await admin.call('POST', `/billing/accounts/${randomUUID()}/privacy-contact`, { email: 'a@b.example', reason: 'why' }, auth)).status).toBe(404);
    expect((await admin.call('POST', `/billing/accounts/${c.id}/privacy-contact`, { email: 'a@b.example', reason: 'why' })).status).toBe(401);
  });
});
