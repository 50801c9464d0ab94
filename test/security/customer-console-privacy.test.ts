import { strFromU8, unzipSync } from 'fflate';
import { beforeAll, describe, expect, it } from 'vitest';
import { accountsService } from '../../src/accounts/accounts.service';
import { createAdminApp } from '../../src/admin/app';
import { systemClock } from '../../src/clock';
import { customerConsoleService } from '../../src/customerConsole/customerConsole.service';
import { browser as makeBrowser, csrfOf, customerWithPassword, signedIn, signIn, type Browser } from '../helpers/customerConsole';
import { dsrConfig, dsrSuite } from '../helpers/dsrStack';
import { silentLogger, testDb } from '../helpers/env';
import { untilTrue } from '../helpers/eventually';
import { serve } from '../helpers/servers';
import { insertUsageEvents } from '../helpers/usageEvents';
import { withTestWorker } from '../helpers/worker';

/**
 * Attacks on "Your privacy" (/app/privacy): a POST without the session's CSRF
 * token, another user's request id (of the same account or another), request
 * types outside the list, markup in names, and a package that must hold the
 * signed-in user's data only, not a colleague's of the same account.
 */
const config = dsrConfig({ TRUSTED_PROXIES: 'loopback' });
const db = testDb(config);
const suite = dsrSuite(config, db);
const PASSWORD = 'correct horse battery staple';
const tag = Math.random().toString(36).slice(2, 8);
const MARKUP = `<script>alert("${tag}")</script>`;
let base: string;
let lastOctet = 0;
const browser = () => makeBrowser(base, { 'x-forwarded-for': `198.51.100.${++lastOctet}` });
async function signedInAs(email: string): Promise<Browser> {
  const b = browser();
  expect(signedIn(await signIn(b, email, PASSWORD))).toBe(true);
  return b;
}
const filedBy = (userId: string) => db('dsr_requests').where({ created_by: `console:user:${userId}` });

let a: Awaited<ReturnType<typeof customerWithPassword>>;
let other: Awaited<ReturnType<typeof customerWithPassword>>;
let colleague: { id: string; email: string };
let othersRequest: string;
let colleaguesRequest: string;

beforeAll(async () => {
  const app = createAdminApp({
    db,
    billing: config.billing,
    config,
    clock: systemClock,
    logger: silentLogger,
    readiness: {},
    readyCheckTimeoutMs: 1000,
    temporal: { client: suite.client, taskQueue: config.temporal.taskQueue },
  });
  const s = await serve(app);
  base = s.url;
  a = await customerWithPassword(db, config, PASSWORD);
  other = await customerWithPassword(db, config, PASSWORD);
  await db('users').where({ id: a.userId }).update({ name: MARKUP });
  const email = `colleague-${tag}@example.com`;
  const c = await accountsService({ db, clock: systemClock, config }).createUser({ accountId: a.accountId, name: `Colleague ${tag}`, email });
  await customerConsoleService({ db }).setPassword(c.id, PASSWORD);
  colleague = { id: c.id, email };
  await insertUsageEvents(db, [
    { account_id: a.accountId, user_id: a.userId, provider: MARKUP, occurred_at: new Date(Date.now() - 60_000) },
    { account_id: a.accountId, user_id: colleague.id, request_id: `req-colleague-${tag}`, occurred_at: new Date(Date.now() - 60_000) },
  ]);
  // Requests of another account's user and of a colleague (no worker: they stay open).
  const o = await signedInAs(other.email);
  await o.post('/app/privacy/requests', { _csrf: await csrfOf(o), type: 'restriction' });
  othersRequest = (await filedBy(other.userId).first()).id;
  const k = await signedInAs(colleague.email);
  await k.post('/app/privacy/requests', { _csrf: await csrfOf(k), type: 'objection' });
  colleaguesRequest = (await filedBy(colleague.id).first()).id;
  return s.close;
});

describe('customer console privacy: attacks', () => {
  it('refuses a POST without the CSRF token, or with another session’s, and files nothing', async () => {
    const b = await signedInAs(a.email);
    expect((await b.post('/app/privacy/download', { format: 'access' })).status).toBe(403);
    expect((await b.post('/app/privacy/requests', { type: 'deletion', _csrf: await csrfOf(await signedInAs(other.email)) })).status).toBe(403);
    expect((await b.post('/app/privacy/requests', { type: 'deletion' }, { 'x-csrf-token': 'x'.repeat(32) })).status).toBe(403);
    expect(await filedBy(a.userId)).toEqual([]);
  });

  it('answers 404 for another user’s request id, of this account or another, and for ids that are no ids', async () => {
    const b = await signedInAs(a.email);
    for (const id of [othersRequest, colleaguesRequest, 'not-an-id', "1' OR '1'='1", '00000000-0000-0000-0000-000000000000']) {
      const r = await b.get(`/app/privacy/requests/${encodeURIComponent(id)}`);
      expect(r.status).toBe(404);
      expect(r.body).not.toContain('restriction of processing');
      expect(r.body).not.toContain('objection to processing');
    }
    const page = await b.get('/app/privacy');
    expect(page.body).not.toContain(othersRequest);
    expect(page.body).not.toContain(colleaguesRequest);
  });

  it('refuses request types outside the list and repeated or oversized fields', async () => {
    const b = await signedInAs(a.email);
    const csrf = await csrfOf(b);
    const forms: Record<string, string>[] = [{ type: 'payload' }, { type: 'access' }, { type: 'nonsense' }, { type: '' }, { type: 'correction' }, { type: 'correction', name: 'x'.repeat(500) }];
    for (const form of forms) {
      const r = await b.post('/app/privacy/requests', { _csrf: csrf, ...form });
      expect(r.status, JSON.stringify(form).slice(0, 60)).toBe(400);
      expect(r.body).not.toMatch(/at .*\.ts:\d+/);
    }
    expect((await b.post('/app/privacy/download', { _csrf: csrf, format: 'deletion' })).status).toBe(400);
    // A repeated field is an array, not a string.
    const body = `_csrf=${csrf}&type=deletion&type=access`;
    const res = await fetch(`${base}/app/privacy/requests`, {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie: [...b.jar].map(([k, v]) => `${k}=${v}`).join('; '), 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-for': `198.51.100.${++lastOctet}` },
      body,
    });
    expect(res.status).toBe(400);
    expect(await filedBy(a.userId)).toEqual([]);
  });

  it('escapes markup in the user’s name and in provider names', async () => {
    const page = await (await signedInAs(a.email)).get('/app/privacy');
    expect(page.status).toBe(200);
    expect(page.body).not.toContain(MARKUP);
    expect(page.body).toContain('&lt;script&gt;');
  });

  it('puts no other user’s data in the package', async () => {
    const b = await signedInAs(a.email);
    await withTestWorker(config, db, async () => {
      expect((await b.post('/app/privacy/download', { _csrf: await csrfOf(b), format: 'access' })).status).toBe(303);
      const href = await untilTrue(async () => /href="(\/privacy\/packages\/[^"]+)"/.exec((await b.get('/app/privacy')).body)?.[1]?.replaceAll('&amp;', '&'), {
        timeoutMs: 30_000,
        message: 'the download link to appear',
      });
      const res = await fetch(base + href);
      expect(res.status).toBe(200);
      const files = unzipSync(new Uint8Array(await res.arrayBuffer()));
      const all = Object.values(files).map((f) => strFromU8(f)).join('\n');
      expect(all).not.toContain(colleague.email);
      expect(all).not.toContain(colleague.id);
      expect(all).not.toContain(`req-colleague-${tag}`);
      expect(all).not.toContain(other.email);
      // The colleague's page shows no link to it.
      expect((await (await signedInAs(colleague.email)).get('/app/privacy')).body).not.toContain('/privacy/packages/');
    });
  });
});
