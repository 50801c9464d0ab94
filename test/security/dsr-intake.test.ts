import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { emailHash } from '../../src/privacy/privacy.data';
import { testDb } from '../helpers/env';
import { accountWithUsers, dsrAdminServer, dsrConfig, dsrSuite, uniqueEmail } from '../helpers/dsrStack';

/**
 * Issue 17, item 3: the public privacy intake as a flood. Each new request
 * mails a code to the address given, so the form is a way to bomb a mailbox
 * and to fill the compliance queue; the per-address limit is only as good as
 * the address it is keyed on.
 */
const base = dsrConfig();
const db = testDb(base);
const dsr = dsrSuite(base, db);

async function withAdmin<T>(overrides: Record<string, string>, fn: (admin: Awaited<ReturnType<typeof dsrAdminServer>>) => Promise<T>): Promise<T> {
  const admin = await dsrAdminServer(db, dsrConfig(overrides), dsr.client);
  try {
    return await fn(admin);
  } finally {
    await admin.close();
  }
}

describe('public privacy intake', () => {
  it('a flood of requests for one email and type creates one request and answers every one the same way', async () => {
    const victim = uniqueEmail('victim');
    await accountWithUsers(db, { billing: victim, users: [victim] });
    await withAdmin({ DSR_INTAKE_RPM: '1000' }, async (admin) => {
      const answers = await Promise.all(Array.from({ length: 12 }, () => admin.call('POST', '/privacy/requests', { type: 'access', email: victim })));
      expect(answers.map((a) => a.status)).toEqual(Array(12).fill(202));
      const requests = await db('dsr_requests').where({ subject_email_hash: emailHash(victim), type: 'access' });
      expect(requests).toHaveLength(1);
      expect(new Set(answers.map((a) => JSON.stringify(a.body))).size).toBe(1);

      // The answer names no request and no date: knowing an address does not give the id of its request
      // (to spend its code's tries on). The id is only in the email to the subject.
      expect(answers[0]!.body).not.toHaveProperty('id');
      expect(answers[0]!.body).not.toHaveProperty('dueDate');
      expect(JSON.stringify(answers[0]!.body)).not.toContain(requests[0].id);
      // An address nobody holds gets the very same answer: the form does not tell which addresses are customers.
      const nobody = await admin.call('POST', '/privacy/requests', { type: 'access', email: uniqueEmail('nobody') });
      expect(nobody.status).toBe(202);
      expect(nobody.body).toEqual(answers[0]!.body);
      // Another type is another request.
      expect((await admin.call('POST', '/privacy/requests', { type: 'deletion', email: victim })).status).toBe(202);
      expect(await db('dsr_requests').where({ subject_email_hash: emailHash(victim) })).toHaveLength(2);
    });
  });

  it('caps new requests per minute over all source addresses with 429', async () => {
    // Each request comes "from" another address: the per-address limit does not apply.
    await withAdmin({ DSR_INTAKE_RPM: '1000', DSR_INTAKE_GLOBAL_RPM: '3', TRUSTED_PROXIES: 'loopback' }, async (admin) => {
      const statuses: number[] = [];
      let limited: { type: string; body: any } | undefined;
      for (let i = 0; i < 6; i++) {
        const a = await admin.call('POST', '/privacy/requests', { type: 'objection', email: uniqueEmail(`many${i}`) }, { headers: { 'x-forwarded-for': `198.51.100.${i + 1}` } });
        statuses.push(a.status);
        if (a.status === 429) limited = a;
      }
      expect(statuses.filter((s) => s === 202).length).toBeLessThanOrEqual(3);
      expect(statuses).toContain(429);
      expect(limited!.type).toContain('application/problem+json');
      expect(limited!.body.detail).toMatch(/too many requests/);
    });
  });

  it('keys the per-address limit on X-Forwarded-For only when the peer is a trusted proxy', async () => {
    const probe = (admin: Awaited<ReturnType<typeof dsrAdminServer>>, xff: string) =>
      admin.call('GET', `/privacy/packages/${randomUUID()}?expires=1&sig=x`, undefined, { headers: { 'x-forwarded-for': xff } });

    // No proxy configured: the header is the attacker's word and changes nothing.
    await withAdmin({ DSR_INTAKE_RPM: '2' }, async (admin) => {
      const statuses = [];
      for (const xff of ['203.0.113.1', '203.0.113.2', '203.0.113.3']) statuses.push((await probe(admin, xff)).status);
      expect(statuses).toEqual([404, 404, 429]);
    });

    // Behind a proxy on loopback: each client is its own address, and one client is still limited.
    await withAdmin({ DSR_INTAKE_RPM: '2', TRUSTED_PROXIES: 'loopback' }, async (admin) => {
      const statuses = [];
      for (const xff of ['203.0.113.1', '203.0.113.2', '203.0.113.3']) statuses.push((await probe(admin, xff)).status);
      expect(statuses).toEqual([404, 404, 404]);
      const same = [];
      for (let i = 0; i < 3; i++) same.push((await probe(admin, '203.0.113.9')).status);
      expect(same).toEqual([404, 404, 429]);
      // A forged hop in front of the proxy's own does not pick the address either.
      expect((await probe(admin, '10.9.9.9, 203.0.113.9')).status).toBe(429);
    });
  });
});
