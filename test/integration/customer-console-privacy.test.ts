import { strFromU8, unzipSync } from 'fflate';
import { beforeAll, describe, expect, it } from 'vitest';
import { createAdminApp } from '../../src/admin/app';
import { systemClock } from '../../src/clock';
import { browser as makeBrowser, csrfOf, customerWithPassword, signedIn, signIn, type Browser } from '../helpers/customerConsole';
import { dsrConfig, dsrSuite } from '../helpers/dsrStack';
import { silentLogger, testDb } from '../helpers/env';
import { untilTrue } from '../helpers/eventually';
import { serve } from '../helpers/servers';
import { workflowIds } from '../../src/temporal/conventions';
import { WORKFLOWS_PATH } from '../../src/worker/worker';
import { Worker } from '@temporalio/worker';
import { insertUsageEvents } from '../helpers/usageEvents';
import { withTestWorker } from '../helpers/worker';

/**
 * The customer console's "Your privacy" page (/app/privacy, issue 26): a
 * signed-in user gets a copy of their data through the dsr workflow, verified
 * by the sign-in, files other rights' requests, sees them with status and
 * deadline; another account's user sees none of them.
 */
const config = dsrConfig({ TRUSTED_PROXIES: 'loopback' });
const db = testDb(config);
const suite = dsrSuite(config, db);
const PASSWORD = 'correct horse battery staple';
let base: string;
let lastOctet = 0;
const browser = () => makeBrowser(base, { 'x-forwarded-for': `198.51.100.${++lastOctet}` });

async function signedInAs(email: string): Promise<Browser> {
  const b = browser();
  expect(signedIn(await signIn(b, email, PASSWORD))).toBe(true);
  return b;
}

let a: Awaited<ReturnType<typeof customerWithPassword>>;
let other: Awaited<ReturnType<typeof customerWithPassword>>;
const provider = `prov-cc-${Math.random().toString(36).slice(2, 8)}`;

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
  await insertUsageEvents(db, [{ account_id: a.accountId, user_id: a.userId, provider, occurred_at: new Date(Date.now() - 60_000) }]);
  return s.close;
});

describe('customer console: your privacy', () => {
  it('says that no content is kept, lists the providers, and is in the navigation', async () => {
    const b = await signedInAs(a.email);
    const page = await b.get('/app/privacy');
    expect(page.status).toBe(200);
    expect(page.body).toContain('href="/app/privacy"');
    expect(page.body).toContain('never keeps your prompts or completions');
    expect(page.body).toContain(provider);
    const otherPage = await (await signedInAs(other.email)).get('/app/privacy');
    expect(otherPage.body).not.toContain(provider);
  });

  it('a user files an access request, verified by the sign-in, and downloads their own package', async () => {
    const b = await signedInAs(a.email);
    await withTestWorker(config, db, async () => {
      const filed = await b.post('/app/privacy/download', { _csrf: await csrfOf(b), format: 'access' });
      expect(filed.status).toBe(303);
      expect(filed.location).toBe('/app/privacy?msg=privacy_copy_requested');
      const row = await db('dsr_requests').where({ created_by: `console:user:${a.userId}`, type: 'access' }).first();
      expect(row).toMatchObject({ channel: 'console', verification_method: 'console_sign_in', account_id: a.accountId, subject_email: a.email });
      expect(row.verified_at).not.toBeNull();
      const href = await untilTrue(
        async () => {
          const page = await b.get('/app/privacy');
          // The link appears when the package is written; the request closes a moment later.
          if (!page.body.includes('data-status="completed"')) return undefined;
          return /href="(\/privacy\/packages\/[^"]+)"/.exec(page.body)?.[1]?.replaceAll('&amp;', '&');
        },
        { timeoutMs: 30_000, message: 'the request to complete with its download link' },
      );
      // No code was mailed: the sign-in was the verification.
      const events = await db('dsr_events').where({ request_id: row.id }).pluck('action');
      expect(events).toContain('identity_verified');
      expect(events).not.toContain('verification_code_sent');
      // The workflow was told the same method the row records.
      const history = await suite.client.workflow.getHandle(workflowIds.dsr(row.id)).fetchHistory();
      const signals = (history.events ?? []).flatMap((e) => (e.workflowExecutionSignaledEventAttributes?.signalName === 'dsrVerified' ? e.workflowExecutionSignaledEventAttributes.input?.payloads ?? [] : []));
      expect(signals.map((p) => JSON.parse(Buffer.from(p.data!).toString()))).toEqual([{ method: 'console_sign_in', actor: `console:user:${a.userId}` }]);
      const zip = await b.get(href);
      expect(zip.status).toBe(200);
      expect(zip.headers.get('content-type')).toContain('application/zip');
      // b.get reads text; fetch again as bytes (the link allows several downloads)
      const res = await fetch(base + href);
      expect(res.status).toBe(200);
      const files = unzipSync(new Uint8Array(await res.arrayBuffer()));
      const doc = JSON.parse(strFromU8(files['data.json']!));
      expect(doc.data.users.map((u: { id: string }) => u.id)).toEqual([a.userId]);
      expect(doc.payloadContent.providers).toContain(provider);
      // The access answer says how each request came in.
      expect(doc.data.rights_requests).toContainEqual(expect.objectContaining({ id: row.id, type: 'access', channel: 'console' }));
      const page = await b.get('/app/privacy');
      expect(page.body).toContain('data-status="completed"');
      // A history with the new verification method replays against today's workflow code.
      const done = await suite.client.workflow.getHandle(workflowIds.dsr(row.id)).fetchHistory();
      await Worker.runReplayHistory({ workflowsPath: WORKFLOWS_PATH }, done, workflowIds.dsr(row.id));
    });
  });

  it('a user files a deletion request and sees it with its deadline; another account never sees it', async () => {
    // No worker here: the request stays open (a worker would erase the user at once).
    const b = await signedInAs(a.email);
    const filed = await b.post('/app/privacy/requests', { _csrf: await csrfOf(b), type: 'deletion' });
    expect(filed.location).toBe('/app/privacy?msg=privacy_request_filed');
    const row = await db('dsr_requests').where({ created_by: `console:user:${a.userId}`, type: 'deletion' }).first();
    expect(row.verification_method).toBe('console_sign_in');
    const dueDate = new Date(row.due_at).toISOString().slice(0, 10);
    const page = await b.get(filed.location);
    expect(page.body).toContain('Your request was filed');
    expect(page.body).toContain(`/app/privacy/requests/${row.id}`);
    expect(page.body).toContain(`<span class="due">${typeof row.due_date === 'string' ? row.due_date : dueDate}</span>`);
    const detail = await b.get(`/app/privacy/requests/${row.id}`);
    expect(detail.status).toBe(200);
    expect(detail.body).toContain('deletion of your data');

    // Filing it again gives back the open one.
    const again = await b.post('/app/privacy/requests', { _csrf: await csrfOf(b), type: 'deletion' });
    expect(again.location).toBe('/app/privacy?msg=privacy_already_open');
    expect(await db('dsr_requests').where({ created_by: `console:user:${a.userId}`, type: 'deletion' }).pluck('id')).toEqual([row.id]);

    const o = await signedInAs(other.email);
    const theirs = await o.get('/app/privacy');
    expect(theirs.body).not.toContain(row.id);
    expect(theirs.body).not.toContain('/privacy/packages/');
    expect((await o.get(`/app/privacy/requests/${row.id}`)).status).toBe(404);
  });

  it('files a correction with the new values', async () => {
    const b = await signedInAs(a.email);
    const filed = await b.post('/app/privacy/requests', { _csrf: await csrfOf(b), type: 'correction', name: 'New Name', phone: '', job_title: 'CTO' });
    expect(filed.status).toBe(303);
    const row = await db('dsr_requests').where({ created_by: `console:user:${a.userId}`, type: 'correction' }).first();
    expect(row.requested_changes).toEqual({ user: { name: 'New Name', job_title: 'CTO' } });
  });
});
