import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminApp } from '../../src/admin/app';
import { systemClock } from '../../src/clock';
import { customerConsoleService } from '../../src/customerConsole/customerConsole.service';
import { membersService } from '../../src/customerConsole/members.service';
import { ForbiddenError } from '../../src/errors';
import { browser as makeBrowser, csrfOf, customerWithPassword, hidden, signedIn, signIn, type Browser } from '../helpers/customerConsole';
import { silentLogger, testConfig, testDb } from '../helpers/env';
import { serve } from '../helpers/servers';

/**
 * Attacks on members and invitations: roles below owner posting the owner's
 * actions directly, a stale session, ids of another account, spent or guessed
 * tokens, an invitation of one account reaching another, and oversized input.
 */
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'members-sec-'));
const config = testConfig({ TRUSTED_PROXIES: 'loopback', DATA_DIR: dataDir });
const db = testDb(config);
const PASSWORD = 'correct horse battery staple';
const NEW_PASSWORD = 'a brand new passphrase for me';
let base: string;
let close: () => Promise<void>;
let lastOctet = 0;

beforeAll(async () => {
  const app = createAdminApp({ db, billing: config.billing, config, clock: systemClock, logger: silentLogger, readiness: {}, readyCheckTimeoutMs: 1000 });
  ({ url: base, close } = await serve(app));
});
afterAll(async () => {
  await close();
  await db.destroy();
});

const browser = () => makeBrowser(base, { 'x-forwarded-for': `192.0.2.${++lastOctet % 250}` });
type Role = 'owner' | 'admin' | 'developer' | 'billing';
const sha = (s: string) => createHash('sha256').update(s).digest('hex');

async function member(role: Role = 'owner') {
  const c = await customerWithPassword(db, config, PASSWORD);
  await db('users').where({ id: c.userId }).update({ console_role: role });
  const b = browser();
  expect(signedIn(await signIn(b, c.email, PASSWORD))).toBe(true);
  return { ...c, b, csrf: await csrfOf(b) };
}

async function colleague(accountId: string, role: Role) {
  const tag = randomUUID().slice(0, 8);
  const email = `colleague-${tag}@example.com`;
  const [u] = await db('users').insert({ account_id: accountId, name: `Colleague ${tag}`, email, console_role: role }).returning(['id']);
  await customerConsoleService({ db }).setPassword(u.id, PASSWORD);
  const b = browser();
  expect(signedIn(await signIn(b, email, PASSWORD))).toBe(true);
  return { userId: u.id as string, email, accountId, b, csrf: await csrfOf(b) };
}

/** An invitation row with a known token, straight in the table (the email path is the integration test's). */
async function invitation(accountId: string, invitedBy: string, opts: { email?: string; role?: Role; expiresAt?: Date } = {}) {
  const token = randomBytes(32).toString('base64url');
  const email = opts.email ?? `invitee-${randomUUID().slice(0, 8)}@example.com`;
  const [row] = await db('customer_invitations')
    .insert({ account_id: accountId, email, console_role: opts.role ?? 'developer', token_hash: sha(token), invited_by: invitedBy, expires_at: opts.expiresAt ?? new Date(Date.now() + 86_400_000) })
    .returning(['id']);
  return { id: row.id as string, token, email };
}

async function accept(token: string, form: Record<string, string> = {}, b: Browser = browser()) {
  const page = await b.get(`/app/invitations/accept?token=${encodeURIComponent(token)}`);
  const r = await b.post('/app/invitations/accept', { _csrf: hidden(page.body, '_csrf'), token, name: 'New Member', password: NEW_PASSWORD, ...form });
  return { page, r };
}

describe('only owners change members', () => {
  it('admins, developers and billing members posting the actions directly are refused and nothing changes', async () => {
    const owner = await member('owner');
    const target = await colleague(owner.accountId, 'developer');
    const inv = await invitation(owner.accountId, owner.userId);
    for (const role of ['admin', 'developer', 'billing'] as const) {
      const m = await colleague(owner.accountId, role);
      const posts: [string, Record<string, string>][] = [
        ['/app/members/invite', { email: `x-${role}@example.com`, role: 'owner' }],
        [`/app/members/${target.userId}/role`, { role: 'owner' }],
        [`/app/members/${m.userId}/role`, { role: 'owner' }],
        [`/app/members/${target.userId}/remove`, {}],
        [`/app/members/${owner.userId}/remove`, {}],
        [`/app/members/invitations/${inv.id}/revoke`, {}],
      ];
      for (const [p, form] of posts) {
        const r = await m.b.post(p, { _csrf: m.csrf, ...form });
        expect(r.status, `${role} ${p}`).toBe(403);
      }
      expect((await m.b.get('/app/members')).status).toBe(role === 'admin' ? 200 : 403);
    }
    expect(await db('users').where({ account_id: owner.accountId }).whereNot('console_role', 'developer').whereNot('console_role', 'admin').whereNot('console_role', 'billing').pluck('id')).toEqual([owner.userId]);
    expect((await db('users').where({ id: target.userId }).first()).console_removed_at).toBeNull();
    expect(await db('customer_invitations').where({ account_id: owner.accountId })).toEqual([expect.objectContaining({ id: inv.id, revoked_at: null })]);
  });

  it('the service checks the role as it is now, not as a session remembers it', async () => {
    const owner = await member('owner');
    const target = await colleague(owner.accountId, 'developer');
    await db('users').where({ id: owner.userId }).update({ console_role: 'developer' });
    const svc = membersService({ db, clock: systemClock, publicBaseUrl: 'http://x.invalid' });
    const stale = { accountId: owner.accountId, userId: owner.userId, role: 'owner' as const, name: 'Stale' };
    await expect(svc.remove(stale, target.userId)).rejects.toBeInstanceOf(ForbiddenError);
    await expect(svc.changeRole(stale, target.userId, 'owner')).rejects.toBeInstanceOf(ForbiddenError);
    await expect(svc.invite(stale, { email: 'stale@example.com', role: 'owner' })).rejects.toBeInstanceOf(ForbiddenError);
    await expect(svc.remove({ ...stale, role: 'admin' }, target.userId)).rejects.toBeInstanceOf(ForbiddenError);
    expect((await db('users').where({ id: target.userId }).first()).console_removed_at).toBeNull();
    expect(await db('customer_invitations').where({ account_id: owner.accountId })).toEqual([]);
  });

  it('refuses a POST without the session CSRF token', async () => {
    const owner = await member('owner');
    const target = await colleague(owner.accountId, 'developer');
    expect((await owner.b.post(`/app/members/${target.userId}/remove`, {})).status).toBe(403);
    expect((await owner.b.post(`/app/members/${target.userId}/remove`, { _csrf: 'x'.repeat(owner.csrf.length) })).status).toBe(403);
    expect((await db('users').where({ id: target.userId }).first()).console_removed_at).toBeNull();
  });
});

describe('another account', () => {
  it("an owner cannot change, remove or revoke by the ids of another account's users and invitations", async () => {
    const a = await member('owner');
    const b = await member('owner');
    const bDev = await colleague(b.accountId, 'developer');
    const bInv = await invitation(b.accountId, b.userId);
    for (const [p, form] of [
      [`/app/members/${bDev.userId}/role`, { role: 'billing' }],
      [`/app/members/${b.userId}/role`, { role: 'developer' }],
      [`/app/members/${bDev.userId}/remove`, {}],
      [`/app/members/${b.userId}/remove`, {}],
      [`/app/members/invitations/${bInv.id}/revoke`, {}],
      ['/app/members/not-a-uuid/remove', {}],
    ] as const) {
      const r = await a.b.post(p, { _csrf: a.csrf, ...form });
      expect(r.status, p).toBe(404);
    }
    expect(await db('users').whereIn('id', [bDev.userId, b.userId]).orderBy('console_role').select('console_role', 'console_removed_at')).toEqual([
      { console_role: 'developer', console_removed_at: null },
      { console_role: 'owner', console_removed_at: null },
    ]);
    expect((await db('customer_invitations').where({ id: bInv.id }).first()).revoked_at).toBeNull();
    expect((await a.b.get('/app/members')).body).not.toContain(bDev.email);
  });

  it("an invitation of account A makes a user of A only, even for an address that is B's user", async () => {
    const a = await member('owner');
    const b = await member('owner');
    const bDev = await colleague(b.accountId, 'developer');
    const bHash = (await db('users').where({ id: bDev.userId }).first()).password_hash;
    const inv = await invitation(a.accountId, a.userId, { email: bDev.email, role: 'admin' });
    const { r } = await accept(inv.token);
    expect(r.location).toBe('/app/login?msg=invitation_accepted');
    const users = await db('users').whereRaw('lower(email) = lower(?)', [bDev.email]).select('id', 'account_id', 'console_role', 'password_hash');
    expect(users).toHaveLength(2);
    expect(users.find((u) => u.id === bDev.userId)).toMatchObject({ account_id: b.accountId, console_role: 'developer', password_hash: bHash });
    expect(users.find((u) => u.id !== bDev.userId)).toMatchObject({ account_id: a.accountId, console_role: 'admin' });
    // The new password opens A; B's own password still opens B.
    const inA = browser();
    expect(signedIn(await signIn(inA, bDev.email, NEW_PASSWORD))).toBe(true);
    const home = await inA.get('/app');
    expect(home.body).toContain(a.accountName);
    expect(home.body).not.toContain(b.accountName);
    expect((await inA.get('/app/members')).body).not.toContain(b.email);
  });
});

describe('invitation tokens', () => {
  it('a used, revoked or expired token answers 410 and says nothing about the account; an unknown one 404', async () => {
    const owner = await member('owner');
    const used = await invitation(owner.accountId, owner.userId);
    expect((await accept(used.token)).r.status).toBe(303);
    const revoked = await invitation(owner.accountId, owner.userId);
    await db('customer_invitations').where({ id: revoked.id }).update({ revoked_at: new Date() });
    const expired = await invitation(owner.accountId, owner.userId, { expiresAt: new Date(Date.now() - 1000) });
    for (const t of [used.token, revoked.token, expired.token]) {
      const { page, r } = await accept(t, { password: 'another password entirely' });
      expect(page.status).toBe(410);
      expect(page.body).not.toContain(owner.accountName);
      expect(page.body).not.toContain('name="token"');
      expect(r.status).toBe(410); // no form was served (no form token), and the form is not served again either
    }
    // Even with a valid form token, a spent invitation is refused.
    const b = browser();
    const form = await b.get(`/app/invitations/accept?token=${randomBytes(32).toString('base64url')}`);
    expect(form.status).toBe(404);
    const open = await invitation(owner.accountId, owner.userId);
    const good = await b.get(`/app/invitations/accept?token=${open.token}`);
    for (const t of [used.token, expired.token]) {
      const again = await b.post('/app/invitations/accept', { _csrf: hidden(good.body, '_csrf'), token: t, name: 'Thief', password: NEW_PASSWORD });
      expect(again.status).toBe(410);
    }
    for (const t of ['', 'short', 'x'.repeat(10_000), `${'A'.repeat(42)}=`]) expect((await browser().get(`/app/invitations/accept?token=${encodeURIComponent(t)}`)).status).toBe(404);
    expect(await db('users').where({ account_id: owner.accountId, name: 'Thief' })).toEqual([]);
    const u = await db('users').where({ account_id: owner.accountId }).whereRaw('lower(email) = lower(?)', [used.email]).first();
    expect(u.password_hash).not.toBeNull();
    expect(signedIn(await signIn(browser(), used.email, 'another password entirely'))).toBe(false);
  });

  it('the accept form needs its form cookie', async () => {
    const owner = await member('owner');
    const inv = await invitation(owner.accountId, owner.userId);
    const r = await browser().post('/app/invitations/accept', { _csrf: 'x'.repeat(32), token: inv.token, name: 'N', password: NEW_PASSWORD });
    expect(r.status).toBe(403);
    expect((await db('customer_invitations').where({ id: inv.id }).first()).accepted_at).toBeNull();
  });

  it('guessing tokens from one address is throttled, in memory and across instances', async () => {
    const b = browser();
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) statuses.push((await b.get(`/app/invitations/accept?token=${randomBytes(32).toString('base64url')}`)).status);
    expect(statuses.slice(0, 10).every((s) => s === 404)).toBe(true);
    const last = await b.get(`/app/invitations/accept?token=${randomBytes(32).toString('base64url')}`);
    expect(last.status).toBe(429);
    expect(Number(last.headers.get('retry-after'))).toBeGreaterThan(0);

    const svc = membersService({ db, clock: systemClock, publicBaseUrl: 'http://x.invalid' });
    const ip = `203.0.113.${randomBytes(1)[0]}-${randomUUID()}`;
    const results = [];
    for (let i = 0; i < 21; i++) results.push((await svc.takeTokenAttempt(ip)).allowed);
    expect(results.slice(0, 20).every(Boolean)).toBe(true);
    expect(results[20]).toBe(false);
  });
});

describe('bounded input', () => {
  it('refuses over-long or malformed addresses, unknown roles, bad names and passwords, with a message', async () => {
    const owner = await member('owner');
    for (const [form, text] of [
      [{ email: `${'a'.repeat(250)}@example.com`, role: 'developer' }, 'at most 254'],
      [{ email: 'x'.repeat(60_000), role: 'developer' }, 'at most 254'],
      [{ email: 'nobody', role: 'developer' }, 'not an email'],
      [{ email: 'ok@example.com', role: 'superuser' }, 'choose a role'],
      [{ email: 'ok@example.com' }, 'choose a role'],
    ] as const) {
      const r = await owner.b.post('/app/members/invite', { _csrf: owner.csrf, ...form });
      expect(r.status).toBe(400);
      expect(r.body).toContain(text);
    }
    const role = await owner.b.post(`/app/members/${owner.userId}/role`, { _csrf: owner.csrf, role: 'x'.repeat(5000) });
    expect(role.status).toBe(400);
    expect(await db('customer_invitations').where({ account_id: owner.accountId })).toEqual([]);

    const inv = await invitation(owner.accountId, owner.userId);
    for (const [form, text] of [
      [{ name: 'x'.repeat(201) }, 'at most 200'],
      [{ name: '' }, 'enter your name'],
      [{ password: 'short' }, 'at least 12'],
      [{ password: 'é'.repeat(5000) }, 'at most 72 bytes'],
    ] as const) {
      const { r } = await accept(inv.token, form);
      expect(r.status).toBe(400);
      expect(r.body).toContain(text);
      expect(r.body).toContain('name="token"');
    }
    expect((await db('customer_invitations').where({ id: inv.id }).first()).accepted_at).toBeNull();
  });

  it('caps open invitations per account', async () => {
    const owner = await member('owner');
    for (let i = 0; i < 50; i++) await invitation(owner.accountId, owner.userId);
    const r = await owner.b.post('/app/members/invite', { _csrf: owner.csrf, email: 'one-more@example.com', role: 'developer' });
    expect(r.status).toBe(409);
    expect(r.body).toContain('50 open invitations');
    expect(await db('customer_invitations').where({ account_id: owner.accountId })).toHaveLength(50);
  });
});
