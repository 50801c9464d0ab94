import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHash, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminApp } from '../../src/admin/app';
import { systemClock } from '../../src/clock';
import { customerConsoleService } from '../../src/customerConsole/customerConsole.service';
import { collectSubjectData, emailHash, eraseSubject, findSubject } from '../../src/privacy/privacy.data';
import { deleteEndedInvitationsBatch } from '../../src/retention/retention.data';
import { browser as makeBrowser, csrfOf, customerWithPassword, hidden, signedIn, signIn, type Browser } from '../helpers/customerConsole';
import { silentLogger, testConfig, testDb } from '../helpers/env';
import { serve } from '../helpers/servers';

/**
 * Members of an account (/app/members, /app/invitations/accept; issue 26):
 * invite → email → accept → sign in with the role; role changes reach open
 * sessions; removal ends sessions and sign-in at once; the last owner stays;
 * a removed member can be invited back; privacy and retention cover invitations.
 */
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'members-'));
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

const browser = () => makeBrowser(base, { 'x-forwarded-for': `198.51.100.${++lastOctet % 250}` });
type Role = 'owner' | 'admin' | 'developer' | 'billing';

async function member(role: Role = 'owner') {
  const c = await customerWithPassword(db, config, PASSWORD);
  await db('users').where({ id: c.userId }).update({ console_role: role });
  const b = browser();
  expect(signedIn(await signIn(b, c.email, PASSWORD))).toBe(true);
  return { ...c, b, csrf: await csrfOf(b) };
}

/** Another user of the same account, signed in. */
async function colleague(accountId: string, role: Role) {
  const tag = randomUUID().slice(0, 8);
  const email = `colleague-${tag}@example.com`;
  const [u] = await db('users').insert({ account_id: accountId, name: `Colleague ${tag}`, email, console_role: role }).returning(['id']);
  await customerConsoleService({ db }).setPassword(u.id, PASSWORD);
  const b = browser();
  expect(signedIn(await signIn(b, email, PASSWORD))).toBe(true);
  return { userId: u.id as string, email, b, csrf: await csrfOf(b) };
}

async function invite(m: { b: Browser; csrf: string; accountId: string }, email: string, role: Role) {
  const r = await m.b.post('/app/members/invite', { _csrf: m.csrf, email, role });
  expect(r.status, r.body).toBe(303);
  expect(r.location).toBe('/app/members?msg=members_invited');
  const inv = await db('customer_invitations').where({ account_id: m.accountId }).whereRaw('lower(email) = lower(?)', [email]).whereNull('accepted_at').whereNull('revoked_at').first();
  expect(inv).toBeDefined();
  return inv as { id: string; token_hash: string; expires_at: Date };
}

/** The invitation's email as the dev mailbox holds it, and the token its link carries. */
function mailOf(invitationId: string) {
  const dir = config.mail.mailboxDir;
  const mails = fs.readdirSync(dir).map((f) => JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as { to: string; subject: string; body: string; key: string });
  const found = mails.filter((m) => m.key === `customer-invitation:${invitationId}`);
  expect(found).toHaveLength(1);
  const token = /\/app\/invitations\/accept\?token=([A-Za-z0-9_-]+)/.exec(found[0]!.body)?.[1] ?? '';
  return { ...found[0]!, token };
}

async function accept(token: string, name: string, password: string) {
  const b = browser();
  const page = await b.get(`/app/invitations/accept?token=${token}`);
  const r = await b.post('/app/invitations/accept', { _csrf: hidden(page.body, '_csrf'), token, name, password });
  return { page, r, b };
}

describe('inviting a member', () => {
  it('emails a link; accepting creates the user with that role, who signs in with the chosen password', async () => {
    const owner = await member('owner');
    const email = `invitee-${randomUUID().slice(0, 8)}@example.com`;
    const inv = await invite(owner, email, 'billing');

    // Queued once, sent, its body (with the link) cleared; only the token's hash is stored.
    const outbox = await db('notification_outbox').where({ idempotency_key: `customer-invitation:${inv.id}` });
    expect(outbox).toHaveLength(1);
    expect(outbox[0]).toMatchObject({ recipient: email, body: '' });
    expect(outbox[0].sent_at).not.toBeNull();
    const mail = mailOf(inv.id);
    expect(mail.to).toBe(email);
    expect(mail.subject).toContain(owner.accountName);
    expect(mail.body).toContain(`${config.checkout.publicBaseUrl}/app/invitations/accept?token=`);
    expect(inv.token_hash).toBe(createHash('sha256').update(mail.token).digest('hex'));
    expect(JSON.stringify(await db('customer_invitations').where({ id: inv.id }))).not.toContain(mail.token);
    expect(new Date(inv.expires_at).getTime() - Date.now()).toBeGreaterThan(6.9 * 86_400_000);

    const listed = await owner.b.get('/app/members');
    expect(listed.body).toContain(email);
    expect(listed.body).toContain('Invitations not yet accepted');

    const { page, r } = await accept(mail.token, 'Bea Billing', NEW_PASSWORD);
    expect(page.status).toBe(200);
    expect(page.body).toContain(owner.accountName);
    expect(page.body).toContain('billing');
    expect(page.headers.get('referrer-policy')).toBe('no-referrer');
    expect(r.status, r.body).toBe(303);
    expect(r.location).toBe('/app/login?msg=invitation_accepted');

    const user = await db('users').where({ account_id: owner.accountId }).whereRaw('lower(email) = lower(?)', [email]).first();
    expect(user).toMatchObject({ name: 'Bea Billing', console_role: 'billing', console_removed_at: null });
    expect(await db('customer_invitations').where({ id: inv.id }).first()).toMatchObject({ accepted_user_id: user.id });

    const b = browser();
    expect(signedIn(await signIn(b, email, NEW_PASSWORD))).toBe(true);
    expect((await b.get('/app/billing')).status).toBe(200);
    const keys = await b.get('/app/keys');
    expect(keys.status).toBe(403);
    expect((await b.get('/app/members')).status).toBe(403);
    expect((await b.get('/app')).body).not.toContain('href="/app/members"');

    // The owner's list now has the member, with their sign-in.
    const after = await owner.b.get('/app/members');
    expect(after.body).toContain('Bea Billing');
    expect(after.body).toMatch(/Invitations not yet accepted<\/caption>.*?<td colspan="6">None\.<\/td>/s);
  });

  it('says clearly when the address already has an open invitation or is already a member', async () => {
    const owner = await member('owner');
    const email = `twice-${randomUUID().slice(0, 8)}@example.com`;
    await invite(owner, email, 'developer');
    const again = await owner.b.post('/app/members/invite', { _csrf: owner.csrf, email: email.toUpperCase(), role: 'admin' });
    expect(again.status).toBe(409);
    expect(again.body).toContain('already has an open invitation');
    const self = await owner.b.post('/app/members/invite', { _csrf: owner.csrf, email: owner.email, role: 'admin' });
    expect(self.status).toBe(409);
    expect(self.body).toContain('is already a member of this account');
    expect(await db('customer_invitations').where({ account_id: owner.accountId })).toHaveLength(1);
  });

  it('revokes an invitation: its link stops working, and the address can be invited again', async () => {
    const owner = await member('owner');
    const email = `revoked-${randomUUID().slice(0, 8)}@example.com`;
    const inv = await invite(owner, email, 'developer');
    const { token } = mailOf(inv.id);
    const r = await owner.b.post(`/app/members/invitations/${inv.id}/revoke`, { _csrf: owner.csrf });
    expect(r.location).toBe('/app/members?msg=members_invitation_revoked');
    const gone = await browser().get(`/app/invitations/accept?token=${token}`);
    expect(gone.status).toBe(410);
    await invite(owner, email, 'admin');
  });
});

describe('roles', () => {
  it("an owner's change reaches the member's open session on its next request", async () => {
    const owner = await member('owner');
    const dev = await colleague(owner.accountId, 'developer');
    expect((await dev.b.get('/app/keys')).status).toBe(200);
    expect((await dev.b.get('/app/billing')).status).toBe(403);
    const r = await owner.b.post(`/app/members/${dev.userId}/role`, { _csrf: owner.csrf, role: 'billing' });
    expect(r.location).toBe('/app/members?msg=members_role_changed');
    expect((await dev.b.get('/app/keys')).status).toBe(403);
    expect((await dev.b.get('/app/billing')).status).toBe(200);
    expect((await db('users').where({ id: dev.userId }).first()).console_role).toBe('billing');
  });

  it('an admin sees members but gets no forms; owners see the forms', async () => {
    const owner = await member('owner');
    const admin = await colleague(owner.accountId, 'admin');
    const page = await admin.b.get('/app/members');
    expect(page.status).toBe(200);
    expect(page.body).toContain(owner.email);
    expect(page.body).not.toContain('action="/app/members/invite"');
    expect(page.body).toContain("Only the account's owners");
    const mine = await owner.b.get('/app/members');
    expect(mine.body).toContain('action="/app/members/invite"');
    expect(mine.body).toContain('href="/app/members"');
  });

  it('shows last sign-in and whether two-step sign-in is on', async () => {
    const owner = await member('owner');
    const dev = await colleague(owner.accountId, 'developer');
    await db('user_totp').insert({ user_id: dev.userId, ciphertext: Buffer.from('x'), iv: Buffer.from('y'), auth_tag: Buffer.from('z'), confirmed_at: new Date() });
    const page = await owner.b.get('/app/members');
    const rowOf = (email: string) => new RegExp(`<tr><td>[^<]*(?:<strong>[^<]*</strong>)?</td><td>${email.replace(/[.]/g, '\\.')}</td>.*?</tr>`, 's').exec(page.body)?.[0] ?? '';
    expect(rowOf(dev.email)).toMatch(/<td>\d{4}-\d\d-\d\dT[^<]+<\/td><td>on<\/td>/);
    expect(rowOf(owner.email)).toMatch(/<td>off<\/td>/);
  });
});

describe('removing a member', () => {
  it('ends their sessions at once, refuses their password, and deletes their second factor', async () => {
    const owner = await member('owner');
    const dev = await colleague(owner.accountId, 'developer');
    await db('user_totp').insert({ user_id: dev.userId, ciphertext: Buffer.from('x'), iv: Buffer.from('y'), auth_tag: Buffer.from('z'), confirmed_at: new Date() });
    await db('user_recovery_codes').insert({ user_id: dev.userId, code_hash: 'h1' });
    expect((await dev.b.get('/app')).status).toBe(200);

    const r = await owner.b.post(`/app/members/${dev.userId}/remove`, { _csrf: owner.csrf });
    expect(r.location).toBe('/app/members?msg=members_removed');

    const next = await dev.b.get('/app');
    expect(next.status).toBe(303);
    expect(next.location).toBe('/app/login');
    expect(signedIn(await signIn(browser(), dev.email, PASSWORD))).toBe(false);
    const u = await db('users').where({ id: dev.userId }).first();
    expect(u.console_removed_at).not.toBeNull();
    expect(u.password_hash).toBeNull();
    expect(await db('user_totp').where({ user_id: dev.userId })).toEqual([]);
    expect(await db('user_recovery_codes').where({ user_id: dev.userId })).toEqual([]);
    expect(await db('customer_sessions').where({ user_id: dev.userId }).whereNull('revoked_at')).toEqual([]);
    expect((await owner.b.get('/app/members')).body).not.toContain(dev.email);
  });

  it('a user marked removed by any path loses an open session and is refused at sign-in, even with a password left', async () => {
    const owner = await member('owner');
    const dev = await colleague(owner.accountId, 'developer');
    expect((await dev.b.get('/app')).status).toBe(200);
    // Only the flag: the session row stays open and the password hash stays.
    await db('users').where({ id: dev.userId }).update({ console_removed_at: new Date() });
    expect((await dev.b.get('/app')).location).toBe('/app/login');
    expect(signedIn(await signIn(browser(), dev.email, PASSWORD))).toBe(false);
    expect(await db('customer_sessions').where({ user_id: dev.userId }).whereNull('revoked_at')).toHaveLength(1);
  });

  it('a removed member invited again joins as the same user with the new role and password', async () => {
    const owner = await member('owner');
    const dev = await colleague(owner.accountId, 'developer');
    await owner.b.post(`/app/members/${dev.userId}/remove`, { _csrf: owner.csrf });
    const inv = await invite(owner, dev.email, 'admin');
    const { r } = await accept(mailOf(inv.id).token, 'Back Again', NEW_PASSWORD);
    expect(r.location).toBe('/app/login?msg=invitation_accepted');
    const u = await db('users').where({ id: dev.userId }).first();
    expect(u).toMatchObject({ console_removed_at: null, console_role: 'admin', name: 'Back Again' });
    expect(await db('users').where({ account_id: owner.accountId })).toHaveLength(2);
    const b = browser();
    expect(signedIn(await signIn(b, dev.email, NEW_PASSWORD))).toBe(true);
    expect(signedIn(await signIn(browser(), dev.email, PASSWORD))).toBe(false);
    expect((await b.get('/app/members')).status).toBe(200);
  });
});

describe('the last owner', () => {
  it('cannot remove or demote themselves; with a second owner they can leave, and their session ends', async () => {
    const owner = await member('owner');
    const removeSelf = await owner.b.post(`/app/members/${owner.userId}/remove`, { _csrf: owner.csrf });
    expect(removeSelf.status).toBe(409);
    expect(removeSelf.body).toContain('at least one owner');
    const demote = await owner.b.post(`/app/members/${owner.userId}/role`, { _csrf: owner.csrf, role: 'admin' });
    expect(demote.status).toBe(409);
    expect((await db('users').where({ id: owner.userId }).first()).console_role).toBe('owner');

    const second = await colleague(owner.accountId, 'admin');
    await owner.b.post(`/app/members/${second.userId}/role`, { _csrf: owner.csrf, role: 'owner' });
    const leave = await owner.b.post(`/app/members/${owner.userId}/remove`, { _csrf: owner.csrf });
    expect(leave.location).toBe('/app/login?msg=signed_out');
    expect((await owner.b.get('/app')).status).toBe(303);
    // The remaining owner is now the last one.
    const last = await second.b.post(`/app/members/${second.userId}/role`, { _csrf: second.csrf, role: 'developer' });
    expect(last.status).toBe(409);
  });
});

describe('privacy and retention of invitations', () => {
  it('the access answer holds invitations to the address, erasure deletes them, and ended ones expire after 90 days', async () => {
    const owner = await member('owner');
    const email = `subject-${randomUUID().slice(0, 8)}@example.com`;
    const inv = await invite(owner, email, 'developer');

    const subject = await findSubject(db, email, null);
    expect(subject.invitationIds).toEqual([inv.id]);
    const held = await collectSubjectData(db, subject, emailHash(email), { portable: false });
    expect(held.customer_invitations).toEqual([expect.objectContaining({ account_id: owner.accountId, email, console_role: 'developer', accepted_at: null })]);
    expect(JSON.stringify(held.customer_invitations)).not.toContain(inv.token_hash);
    expect((await findSubject(db, email, randomUUID())).invitationIds).toEqual([]);

    const [req] = await db('dsr_requests')
      .insert({ type: 'deletion', channel: 'staff', subject_email_hash: emailHash(email), jurisdiction: 'gdpr', due_date: '2027-01-01', due_at: new Date(), extension_notice_by: new Date(), created_by: 'test' })
      .returning(['id']);
    await db.transaction((trx) => eraseSubject(trx, req.id, subject));
    expect(await db('customer_invitations').where({ id: inv.id })).toEqual([]);

    // Retention: an invitation that ended (expired here) more than 90 days ago goes; a recent one stays.
    const old = await invite(owner, `old-${randomUUID().slice(0, 8)}@example.com`, 'billing');
    await db('customer_invitations').where({ id: old.id }).update({ expires_at: new Date(Date.now() - 100 * 86_400_000) });
    const recent = await invite(owner, `recent-${randomUUID().slice(0, 8)}@example.com`, 'billing');
    await db('customer_invitations').where({ id: recent.id }).update({ revoked_at: new Date() });
    const cutoff = new Date(Date.now() - 90 * 86_400_000);
    while ((await deleteEndedInvitationsBatch(db, cutoff, 100)) > 0);
    expect(await db('customer_invitations').where({ id: old.id })).toEqual([]);
    expect(await db('customer_invitations').where({ id: recent.id })).toHaveLength(1);
  });
});
