import { describe, expect, it } from 'vitest';
import type { DsrState } from '../../workflows/messages';
import { testDb } from '../helpers/env';
import { accountWithUsers, codeMailFor, dsrConfig, dsrSuite, until, uniqueEmail, type Answer } from '../helpers/dsrStack';
import { withTestWorker } from '../helpers/worker';

/**
 * Issue 17, item 2: data-subject corrections as a way to change what is not
 * yours. A user of a customer account (not its billing contact) verifies
 * their own address and asks to "correct" the account's billing email and
 * name; values no staff edit would accept; approval before anyone could see
 * the request; and a correction the database refuses, which used to be
 * retried for ever with the request stuck in progress.
 */
const config = dsrConfig({ DSR_INTAKE_RPM: '1000' });
const db = testDb(config);
const dsr = dsrSuite(config, db, { admin: true });

const result = (id: string) => dsr.client.workflow.getHandle(`dsr:${id}`).result() as Promise<DsrState>;
const staff = (method: string, p: string, body?: unknown) => dsr.admin.call(method, p, body, { staff: true });
const awaitingApproval = (id: string) =>
  until(async () => (await staff('GET', `/privacy/dsr/${id}`)).body.status === 'awaiting_approval', { timeoutMs: 15_000, message: `request ${id} to await approval` });

describe('data-subject corrections', () => {
  it("a verified user who is not the account's billing contact cannot change the account's fields, even when staff approve", async () => {
    const owner = uniqueEmail('owner');
    const member = uniqueEmail('member');
    const { accountId } = await accountWithUsers(db, { billing: owner, users: [owner, member] });
    const before = await db('accounts').where({ id: accountId }).first();
    await withTestWorker(config, db, async () => {
      const filed = await dsr.admin.call('POST', '/privacy/requests', {
        type: 'correction',
        email: member,
        accountId,
        changes: { account: { billing_email: member, name: 'Taken Over Ltd' }, user: { job_title: 'Owner' } },
      });
      expect(filed.status).toBe(202);
      const { id, code } = await codeMailFor(config, member);
      expect((await dsr.admin.call('POST', `/privacy/requests/${id}/verify`, { code })).status).toBe(200);
      await awaitingApproval(id);

      // The approver sees the account, who its contact is, and each change as it is and as asked.
      const shown = await staff('GET', `/privacy/dsr/${id}`);
      expect(shown.body.correction.accounts).toEqual([{ id: accountId, name: before.name, billingContact: false }]);
      expect(shown.body.correction.changes).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ record: 'account', id: accountId, field: 'billing_email', from: owner, to: member, applies: false }),
          expect.objectContaining({ record: 'account', id: accountId, field: 'name', from: before.name, to: 'Taken Over Ltd', applies: false }),
          expect.objectContaining({ record: 'user', field: 'job_title', from: null, to: 'Owner', applies: true }),
        ]),
      );

      expect((await staff('POST', `/privacy/dsr/${id}/approve`)).status).toBe(200);
      const done = await result(id);
      expect(done.status).toBe('partially_completed');
      expect(done.refusals).toEqual(expect.arrayContaining([{ item: 'account.billing_email', ground: 'third_party_rights' }]));
    });
    const after = await db('accounts').where({ id: accountId }).first();
    expect(after).toMatchObject({ billing_email: owner, name: before.name });
    expect((await db('users').whereRaw('lower(email) = ?', [member]).first()).job_title).toBe('Owner');
  });

  it("refuses values that staff edits would refuse, with the staff schemas' messages", async () => {
    const subject = uniqueEmail('subject');
    await accountWithUsers(db, { billing: subject, users: [subject] });
    const bad: Answer = await dsr.admin.call('POST', '/privacy/requests', {
      type: 'correction',
      email: subject,
      changes: { user: { email: 'not-an-email', name: '' }, account: { country: 'Germany', vat_id: 'x'.repeat(500) } },
    });
    expect(bad.status).toBe(400);
    expect(bad.type).toContain('application/problem+json');
    const messages = (bad.body.errors as { field: string; message: string }[]).map((e) => `${e.field}: ${e.message}`);
    expect(messages).toEqual(
      expect.arrayContaining([
        'changes.user.email: email must be an email address',
        'changes.user.name: name must not be empty',
        'changes.account.country: country must be an ISO 3166-1 alpha-2 code such as DE',
        expect.stringMatching(/^changes\.account\.vat_id: /),
      ]),
    );
    // A name cannot be cleared: the record needs one.
    const cleared = await dsr.admin.call('POST', '/privacy/requests', { type: 'correction', email: subject, changes: { account: { name: null } } });
    expect(cleared.status).toBe(400);
  });

  it('accepts approval only while the correction awaits it (409 before, and after)', async () => {
    const subject = uniqueEmail('subject');
    await accountWithUsers(db, { billing: subject, users: [subject] });
    await withTestWorker(config, db, async () => {
      const created = await staff('POST', '/privacy/dsr', { type: 'correction', email: subject, changes: { user: { job_title: 'CFO' } } });
      expect(created.status).toBe(201);
      const id = created.body.id as string;
      const early = await staff('POST', `/privacy/dsr/${id}/approve`);
      expect(early.status).toBe(409);
      expect(early.type).toContain('application/problem+json');
      expect(early.body.detail).toMatch(/awaiting approval/);

      expect((await staff('POST', `/privacy/dsr/${id}/verify`, { method: 'document', note: 'passport checked' })).status).toBe(200);
      // The early approval was not remembered: the request waits for a real one.
      await awaitingApproval(id);
      expect((await staff('POST', `/privacy/dsr/${id}/approve`)).status).toBe(200);
      expect(await result(id)).toMatchObject({ status: 'completed' });
      expect((await staff('POST', `/privacy/dsr/${id}/approve`)).status).toBe(409);
    });
  });

  it('a correction the database refuses ends failed, with a reason and on the open list, instead of retrying for ever', async () => {
    const alice = uniqueEmail('alice');
    const bob = uniqueEmail('bob');
    const { users } = await accountWithUsers(db, { billing: alice, users: [alice, bob] });
    await withTestWorker(config, db, async () => {
      // Passes every schema, but bob already has that address in the account.
      const created = await staff('POST', '/privacy/dsr', { type: 'correction', email: alice, changes: { user: { email: bob } } });
      const id = created.body.id as string;
      await staff('POST', `/privacy/dsr/${id}/verify`, { method: 'document', note: 'passport checked' });
      await awaitingApproval(id);
      expect((await staff('POST', `/privacy/dsr/${id}/approve`)).status).toBe(200);
      expect(await result(id)).toMatchObject({ status: 'failed', failureReason: 'correction_conflict' });

      const shown = await staff('GET', `/privacy/dsr/${id}`);
      expect(shown.body).toMatchObject({ status: 'failed', failureReason: 'correction_conflict' });
      expect(shown.body.events.map((e: { action: string }) => e.action)).toContain('fulfilment_failed');
      const failed = await staff('GET', '/privacy/dsr?status=failed');
      expect(failed.body.map((r: { id: string }) => r.id)).toContain(id);
      const open = await staff('GET', '/privacy/dsr?status=open&limit=500');
      expect(open.body.map((r: { id: string }) => r.id)).toContain(id);
      // Nothing half-applied, and no personal value in the workflow's history.
      expect((await db('users').where({ id: users[alice]! }).first()).email).toBe(alice);
      const history = JSON.stringify(await dsr.client.workflow.getHandle(`dsr:${id}`).fetchHistory());
      expect(history).not.toContain(bob);
    });
  });
});
