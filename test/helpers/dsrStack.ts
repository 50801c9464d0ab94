import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll } from 'vitest';
import { createAdminApp } from '../../src/admin/app';
import { systemClock } from '../../src/clock';
import type { Config } from '../../src/config';
import type { Db } from '../../src/db/knex';
import { accountsService } from '../../src/accounts/accounts.service';
import { silentLogger, testConfig } from './env';
import { untilTrue } from './eventually';
import { serve } from './servers';
import { staffService } from '../../src/staff/staff.service';

/**
 * The data-subject request stack as test/integration/dsr.test.ts sets it up,
 * for the security tests of the public /privacy routes and of corrections:
 * a config with its own data dir (so its own mailbox), the admin server on
 * loopback with a compliance token, and the file mailbox the worker writes.
 */
export function dsrConfig(overrides: Record<string, string> = {}): Config {
  return testConfig({ DATA_DIR: fs.mkdtempSync(path.join(os.tmpdir(), 'mixroute-dsr-sec-')), DSR_REMINDER_BEFORE_S: '3600', ...overrides });
}

export interface Mail {
  to: string;
  subject: string;
  body: string;
}

export function mailbox(config: Config): Mail[] {
  if (!fs.existsSync(config.mail.mailboxDir)) return [];
  return fs
    .readdirSync(config.mail.mailboxDir)
    .sort()
    .map((f) => JSON.parse(fs.readFileSync(path.join(config.mail.mailboxDir, f), 'utf8')) as Mail);
}

/** The one-time code mailed to `email`, once it is there. */
export const codeFrom = (config: Config, email: string): string | null => {
  const m = mailbox(config).find((x) => x.to === email && /confirm it is you/.test(x.subject));
  return m ? /enter this code: (\d{6})/.exec(m.body)![1]! : null;
};

/**
 * untilTrue under the name the DSR security tests import (their import lines are left alone while
 * the domains move); it takes the same deadline and message.
 */
export const until = untilTrue;

/**
 * Every code mailed to `email`, oldest first, with the request id of its verify
 * link: the public form names no request, so a subject (and a test) learns the
 * id from the email only.
 */
export const codeMails = (config: Config, email: string): { id: string; code: string }[] =>
  mailbox(config)
    .filter((x) => x.to === email && /confirm it is you/.test(x.subject))
    .map((m) => ({ id: /\/privacy\/requests\/([0-9a-f-]{36})\/verify/.exec(m.body)![1]!, code: /enter this code: (\d{6})/.exec(m.body)![1]! }));

/** The request id and code of the first code mailed to `email`, once it is there. */
export const codeMailFor = (config: Config, email: string) => untilTrue(() => codeMails(config, email)[0], { timeoutMs: 15_000, message: `the code mail to reach ${email}` });

export interface Answer {
  status: number;
  type: string;
  body: any;
}

/** The admin server on loopback; `call` speaks JSON, as staff (token) or as the public (no token). */
export async function dsrAdminServer(db: Db, config: Config, client?: Client) {
  const app = createAdminApp({
    db,
    billing: config.billing,
    config,
    clock: systemClock,
    logger: silentLogger,
    readiness: {},
    readyCheckTimeoutMs: 1000,
    ...(client ? { temporal: { client, taskQueue: config.temporal.taskQueue } } : {}),
  });
  const s = await serve(app);
  const { token } = await staffService({ db }).createStaffToken({ role: 'compliance' });
  const call = async (method: string, p: string, body?: unknown, opts: { staff?: boolean; headers?: Record<string, string> } = {}): Promise<Answer> => {
    const res = await fetch(s.url + p, {
      method,
      headers: { ...(opts.staff ? { authorization: `Bearer ${token}` } : {}), ...(body ? { 'content-type': 'application/json' } : {}), ...opts.headers },
      body: body ? JSON.stringify(body) : undefined,
    });
    const type = res.headers.get('content-type') ?? '';
    return { status: res.status, type, body: type.includes('json') ? await res.json() : await res.text() };
  };
  return { url: s.url, call, close: s.close };
}

/** An account whose billing contact is `billing`, with users of the given emails. */
export async function accountWithUsers(db: Db, opts: { billing: string; users: string[] }) {
  const ops = accountsService({ db, clock: systemClock });
  const tag = randomUUID().slice(0, 8);
  const account = await ops.createAccount({ name: `Victim Co ${tag}`, billingEmail: opts.billing, country: 'DE', vatId: `DE${tag}` });
  const users: Record<string, string> = {};
  for (const email of opts.users) users[email] = (await ops.createUser({ accountId: account.id, name: `User ${email.split('@')[0]}`, email })).id;
  return { accountId: account.id as string, users };
}

export const uniqueEmail = (who: string) => `${who}-${randomUUID().slice(0, 8)}@example.com`;

export type DsrAdmin = Awaited<ReturnType<typeof dsrAdminServer>>;

/**
 * A test file's Temporal client for `config` (and, with `admin`, the admin
 * server on it), set up in beforeAll; closed with `db` in afterAll. Its
 * fields are there once beforeAll has run.
 */
export function dsrSuite(config: Config, db: Db, opts: { admin?: boolean } = {}) {
  const suite = {} as { connection: Connection; client: Client; admin: DsrAdmin };
  beforeAll(async () => {
    suite.connection = await Connection.connect({ address: config.temporal.address! });
    suite.client = new Client({ connection: suite.connection, namespace: config.temporal.namespace });
    if (opts.admin) suite.admin = await dsrAdminServer(db, config, suite.client);
  });
  afterAll(async () => {
    if (opts.admin) await suite.admin.close();
    await suite.connection.close();
    await db.destroy();
  });
  return suite;
}
