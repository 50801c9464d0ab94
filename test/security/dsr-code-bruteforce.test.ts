import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { accountsService } from '../../src/accounts/accounts.service';
import { systemClock } from '../../src/clock';
import { testDb } from '../helpers/env';
import { emailHash } from '../../src/privacy/privacy.data';
import { accountWithUsers, codeMailFor, codeMails, dsrConfig, dsrSuite, until, uniqueEmail } from '../helpers/dsrStack';
import { withTestWorker } from '../helpers/worker';

/**
 * Issue 17, item 3: guessing the one-time code of someone else's privacy
 * request. The attacker files a deletion in the victim's name (the code goes
 * to the victim's mailbox) and fires guesses at the public verify route all at
 * once, so that each is checked before any is counted. A verified deletion
 * would revoke the victim's API keys. Also: what a database reader learns
 * (the stored code and the outbox).
 */
const config = dsrConfig({ DSR_INTAKE_RPM: '1000' });
const db = testDb(config);
const dsr = dsrSuite(config, db, { admin: true });

describe('one-time codes of privacy requests', () => {
  it('evaluates at most 5 concurrent wrong codes, then refuses even the right one; the stored code is a keyed hash and the outbox forgets it', async () => {
    const victim = uniqueEmail('victim');
    const { accountId, users } = await accountWithUsers(db, { billing: victim, users: [victim] });
    const key = await accountsService({ db, clock: systemClock }).createKey({ accountId, userId: users[victim]! });

    await withTestWorker(config, db, async () => {
      const filed = await dsr.admin.call('POST', '/privacy/requests', { type: 'deletion', email: victim });
      expect(filed.status).toBe(202);
      // Only the victim sees this (and the request id, which the public answer does not name); the test
      // reads it to know which guesses are wrong and to try the right one last.
      const { id, code } = await codeMailFor(config, victim);

      const guesses = Array.from({ length: 10 }, (_, i) => String((Number(code) + 1 + i * 7919) % 1_000_000).padStart(6, '0'));
      const answers = await Promise.all(guesses.map((g) => dsr.admin.call('POST', `/privacy/requests/${id}/verify`, { code: g })));
      const evaluated = answers.filter((a) => a.status === 400);
      expect(evaluated.length).toBeLessThanOrEqual(5);
      expect(answers.every((a) => a.status === 400 || a.status === 409)).toBe(true);
      expect(answers.every((a) => a.type.includes('application/problem+json'))).toBe(true);

      const right = await dsr.admin.call('POST', `/privacy/requests/${id}/verify`, { code });
      expect(right.status).toBe(409);
      expect(right.body.detail).toMatch(/too many wrong codes/);
      const row = await db('dsr_requests').where({ id }).first();
      expect(row.verified_at).toBeNull();
      expect(row.verification_attempts).toBe(5);
      expect(await db('api_keys').where({ id: key.id }).first()).toMatchObject({ revoked_at: null });

      // A reader of the database (or a backup) cannot get the code back from what is stored.
      expect(row.verification_code_hash).not.toBe(code);
      expect(row.verification_code_hash).not.toBe(createHash('sha256').update(`${id}:${code}`).digest('hex'));
      expect(row.verification_code_hash).not.toBe(createHash('sha256').update(code).digest('hex'));
      // And the code lives an hour by default, not days.
      expect(new Date(row.verification_code_expires_at).getTime() - new Date(row.received_at).getTime()).toBeLessThanOrEqual(3_600_000 + 60_000);
      const outbox = await db('notification_outbox').where({ recipient: victim }).whereNotNull('sent_at');
      expect(outbox.length).toBeGreaterThan(0);
      expect(outbox.filter((m) => m.body.includes(code))).toEqual([]);
    });
  });

  it('lets the subject in with the right code after a few wrong ones, once', async () => {
    const subject = uniqueEmail('subject');
    await accountWithUsers(db, { billing: subject, users: [subject] });
    await withTestWorker(config, db, async () => {
      expect((await dsr.admin.call('POST', '/privacy/requests', { type: 'payload', email: subject })).status).toBe(202);
      const { id, code } = await codeMailFor(config, subject);
      const wrong = code === '000000' ? '000001' : '000000';
      expect((await dsr.admin.call('POST', `/privacy/requests/${id}/verify`, { code: wrong })).status).toBe(400);
      const [a, b] = await Promise.all([dsr.admin.call('POST', `/privacy/requests/${id}/verify`, { code }), dsr.admin.call('POST', `/privacy/requests/${id}/verify`, { code })]);
      expect([a.status, b.status]).toEqual([200, 200]);
      await until(async () => (await db('dsr_requests').where({ id }).first()).closed_at, { timeoutMs: 15_000, message: 'the verified request to close' });
      const events = await db('dsr_events').where({ request_id: id, action: 'identity_verified' });
      expect(events).toHaveLength(1);
    });
  });
  it('does not hand out fresh guesses for filing again: after 10 wrong codes over its requests, the email and type get no new request or code for a day', async () => {
    const victim = uniqueEmail('refiled');
    await accountWithUsers(db, { billing: victim, users: [victim] });
    const wrongFor = (code: string, i: number) => String((Number(code) + 1 + i * 7919) % 1_000_000).padStart(6, '0');
    await withTestWorker(config, db, async () => {
      const answers = [];
      for (const round of [1, 2]) {
        answers.push(await dsr.admin.call('POST', '/privacy/requests', { type: 'deletion', email: victim }));
        const { id, code } = await until(() => codeMails(config, victim)[round - 1], { timeoutMs: 15_000, message: `code mail ${round} to reach the victim` });
        for (let i = 0; i < 5; i++) expect((await dsr.admin.call('POST', `/privacy/requests/${id}/verify`, { code: wrongFor(code, i) })).status).toBe(400);
        expect((await dsr.admin.call('POST', `/privacy/requests/${id}/verify`, { code: wrongFor(code, 5) })).status).toBe(409);
      }
      const third = await dsr.admin.call('POST', '/privacy/requests', { type: 'deletion', email: victim });
      // The same neutral answer as before, but nothing was filed and no code was sent.
      expect(third.status).toBe(202);
      expect(third.body).toEqual(answers[0]!.body);
      expect(await db('dsr_requests').where({ subject_email_hash: emailHash(victim), type: 'deletion' })).toHaveLength(2);
      expect(codeMails(config, victim)).toHaveLength(2);
      // Another type is not held back.
      expect((await dsr.admin.call('POST', '/privacy/requests', { type: 'access', email: victim })).status).toBe(202);
      expect(await db('dsr_requests').where({ subject_email_hash: emailHash(victim), type: 'access' })).toHaveLength(1);
    });
  });

  it('spends no attempt while no code is stored', async () => {
    const subject = uniqueEmail('early');
    await accountWithUsers(db, { billing: subject, users: [subject] });
    // No worker runs: the request exists but its code was not made yet. The attacker learned the id somehow.
    expect((await dsr.admin.call('POST', '/privacy/requests', { type: 'objection', email: subject })).status).toBe(202);
    const { id } = await db('dsr_requests').where({ subject_email_hash: emailHash(subject), type: 'objection' }).first();
    const answers = [];
    for (let i = 0; i < 7; i++) answers.push(await dsr.admin.call('POST', `/privacy/requests/${id}/verify`, { code: String(i).padStart(6, '0') }));
    expect(answers.map((a) => a.status)).toEqual(Array(7).fill(409));
    expect(answers[0]!.body.detail).toMatch(/not sent yet/);
    expect((await db('dsr_requests').where({ id }).first()).verification_attempts).toBe(0);
  });
});
