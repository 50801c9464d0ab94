import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accountsService } from '../../src/accounts/accounts.service';
import { createAdminApp } from '../../src/admin/app';
import { systemClock } from '../../src/clock';
import { collectSubjectData, emailHash, findSubject } from '../../src/privacy/privacy.data';
import { deleteCustomerLoginLinksBatch } from '../../src/retention/retention.data';
import { browser as makeBrowser, customerWithPassword, hidden, SESSION_COOKIE } from '../helpers/customerConsole';
import { eventually } from '../helpers/eventually';
import { enableTwoStep, linkTokensTo, mailbox, postSecondFactor } from '../helpers/secondFactor';
import { silentLogger, testConfig, testDb } from '../helpers/env';
import { serve } from '../helpers/servers';

/**
 * One-time sign-in links in the customer console over HTTP (issue 26): asking
 * for one, the email (through the notification outbox, its body cleared once
 * sent), the confirm page, signing in (then the second factor when set up),
 * one link per user of an address, and privacy and retention of the links.
 */
const config = testConfig({ TRUSTED_PROXIES: 'loopback', DATA_DIR: fs.mkdtempSync(path.join(os.tmpdir(), 'mixroute-link-')) });
const db = testDb(config);
const PASSWORD = 'correct horse battery staple';
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

const browser = () => makeBrowser(base, { 'x-forwarded-for': `203.0.113.${++lastOctet}` });

async function askForLink(email: string) {
  const b = browser();
  const form = await b.get('/app/login');
  expect(form.body).toContain('Email me a sign-in link');
  return b.post('/app/login/link-request', { _csrf: hidden(form.body, '_csrf'), email });
}

async function tokenFor(email: string, n = 1): Promise<string> {
  return eventually(
    () => {
      const tokens = linkTokensTo(config, email);
      expect(tokens.length).toBeGreaterThanOrEqual(n);
      return tokens[n - 1]!;
    },
    { timeoutMs: 10_000, message: 'the sign-in link email' },
  );
}

/** Follows a link as a person does: GET shows a button, POST signs in. */
async function follow(token: string) {
  const b = browser();
  const confirm = await b.get(`/app/login/link?token=${token}`);
  const r = await b.post('/app/login/link', { _csrf: hidden(confirm.body, '_csrf'), token: hidden(confirm.body, 'token') });
  return { b, confirm, r };
}

describe('asking for a sign-in link', () => {
  it('emails a link through the outbox (body cleared once sent); only the token hash is stored; it signs in once', async () => {
    const c = await customerWithPassword(db, config, PASSWORD);
    const ask = await askForLink(c.email.toUpperCase());
    expect(ask.status).toBe(303);
    expect(ask.location).toBe('/app/login?msg=signin_link_sent');
    const token = await tokenFor(c.email);
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);

    const links = await db('customer_login_links').where({ user_id: c.userId });
    expect(links).toHaveLength(1);
    expect(links[0].token_hash).not.toBe(token);
    // 15 minutes from the request (the row's created_at is the database's clock, a moment later).
    expect(Math.abs(new Date(links[0].expires_at).getTime() - new Date(links[0].created_at).getTime() - 15 * 60_000)).toBeLessThan(5_000);
    const outbox = await db('notification_outbox').where({ idempotency_key: `customer-login-link:${links[0].token_hash}` });
    expect(outbox).toHaveLength(1);
    await eventually(
      async () => {
        const row = await db('notification_outbox').where({ id: outbox[0].id }).first();
        expect(row.sent_at).not.toBeNull();
        expect(row.body).toBe('');
      },
      { timeoutMs: 10_000 },
    );
    const mail = mailbox(config).find((m) => m.body.includes(token))!;
    expect(mail.subject).toBe('Your MixRoute sign-in link');
    expect(mail.body).toContain(`${config.checkout.publicBaseUrl}/app/login/link?token=${token}`);

    const { b, confirm, r } = await follow(token);
    // GET does not spend it.
    expect(confirm.status).toBe(200);
    expect(confirm.body).toContain('Press the button to sign in');
    expect(r.status).toBe(303);
    expect(r.location).toBe('/app');
    expect(b.jar.has(SESSION_COOKIE)).toBe(true);
    expect((await b.get('/app')).status).toBe(200);
    expect(await db('login_records').where({ user_id: c.userId })).toHaveLength(1);
    expect((await db('customer_login_links').where({ user_id: c.userId }).first()).used_at).not.toBeNull();

    const again = await follow(token);
    expect(again.r.status).toBe(400);
    expect(again.r.body).toContain('This sign-in link cannot be used');
  });

  it('answers an unknown address exactly as a known one, and sends nothing', async () => {
    const c = await customerWithPassword(db, config, PASSWORD);
    const known = await askForLink(c.email);
    const unknown = await askForLink(`nobody-${c.tag}@example.com`);
    expect(unknown.status).toBe(known.status);
    expect(unknown.location).toBe(known.location);
    await tokenFor(c.email);
    expect(linkTokensTo(config, `nobody-${c.tag}@example.com`)).toEqual([]);
  });

  it('sends one link per user of an address that is a user of several accounts', async () => {
    const c = await customerWithPassword(db, config, PASSWORD);
    const ops = accountsService({ db, clock: systemClock, config });
    const other = await ops.createAccount({ name: `Second ${c.tag} AG`, plan: 'prepaid', country: 'DE', billingEmail: `b2-${c.tag}@example.com` });
    const second = await ops.createUser({ accountId: other.id, name: 'Same person', email: c.email });
    await askForLink(c.email);
    const t2 = await tokenFor(c.email, 2);
    expect(await db('customer_login_links').whereIn('user_id', [c.userId, second.id])).toHaveLength(2);
    const mails = mailbox(config).filter((m) => m.to === c.email);
    expect(mails.map((m) => m.body).join('\n')).toContain(`Second ${c.tag} AG`);
    // Each link signs in to its own user's account.
    const { b, r } = await follow(t2);
    expect(r.location).toBe('/app');
    const used = await db('customer_login_links').whereNotNull('used_at').whereIn('user_id', [c.userId, second.id]).first('user_id');
    const overview = await b.get('/app');
    expect(overview.body).toContain(used.user_id === second.id ? `Second ${c.tag} AG` : c.accountName);
  });

  it('a user with two-step sign-in still gives a code after the link', async () => {
    const c = await customerWithPassword(db, config, PASSWORD);
    const first = browser();
    const form = await first.get('/app/login');
    await first.post('/app/login', { _csrf: hidden(form.body, '_csrf'), email: c.email, password: PASSWORD });
    const t = await enableTwoStep(first);
    await askForLink(c.email);
    const { b, r } = await follow(await tokenFor(c.email));
    expect(r.location).toBe('/app/login/second-factor');
    expect((await b.get('/app')).location).toBe('/app/login');
    expect((await postSecondFactor(b, t.app.next())).location).toBe('/app');
    expect((await b.get('/app')).status).toBe(200);
  });
});

describe('privacy and retention of sign-in links', () => {
  it('the access answer lists the links (times only, never the hash); retention deletes links older than the sign-in records period', async () => {
    const c = await customerWithPassword(db, config, PASSWORD);
    await askForLink(c.email);
    await tokenFor(c.email);
    const link = await db('customer_login_links').where({ user_id: c.userId }).first();
    const held = await collectSubjectData(db, await findSubject(db, c.email, null), emailHash(c.email), { portable: false });
    expect(held.customer_login_links).toEqual([{ user_id: c.userId, created_at: expect.any(String), expires_at: expect.any(String), used_at: null }]);
    expect(JSON.stringify(held)).not.toContain(link.token_hash);

    await db('customer_login_links').where({ token_hash: link.token_hash }).update({ created_at: new Date(Date.now() - 200 * 86_400_000), expires_at: new Date(Date.now() - 200 * 86_400_000) });
    const cutoff = new Date(Date.now() - 180 * 86_400_000);
    while ((await deleteCustomerLoginLinksBatch(db, cutoff, 100)) > 0);
    expect(await db('customer_login_links').where({ token_hash: link.token_hash })).toEqual([]);
  });
});
