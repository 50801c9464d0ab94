import { randomBytes } from 'node:crypto';
import type { Client } from '@temporalio/client';
import { systemClock } from '../clock';
import type { Config } from '../config';
import { createStaffUser } from '../console/app';
import type { Db } from '../db/knex';
import { ledgerOperations } from '../ledger/ledger.service';
import { staffOperations } from '../accounts/accounts.service';

/**
 * The demo's data, made through the same services staff use (so the grant is
 * a real topUp workflow and a ledger entry), and only what is missing: a
 * re-run of `mixroute dev` creates nothing twice and never prints a secret
 * again (only hashes are stored). It is set up on a fresh database only: one
 * that already has accounts or providers of its own is left alone.
 */

export const DEMO_PROVIDERS = [
  { name: 'demo', kind: 'openai' as const, path: '/v1' },
  { name: 'demo-anthropic', kind: 'anthropic' as const, path: '/anthropic/v1' },
];
// Prices of the models they stand in for, so the bill looks like a real one (USD per million tokens).
export const DEMO_MODELS = [
  { name: 'demo-gpt', provider: 'demo', upstreamModel: 'demo-gpt-1', inputPerMtok: '0.15', cachedInputPerMtok: '0.075', outputPerMtok: '0.60' },
  { name: 'demo-claude', provider: 'demo-anthropic', upstreamModel: 'demo-claude-1', inputPerMtok: '0.80', cachedInputPerMtok: '0.08', outputPerMtok: '4.00' },
];
export const DEMO_EMAIL = 'demo@mixroute.example';
const DEMO_CREDIT = '10.00';
const DEMO_GRANT_REFERENCE = 'demo-welcome-credit';
const LOCK = 'mixroute-dev-demo';

export type DemoState = 'fresh' | 'present' | 'foreign';

/** fresh: nothing there yet; present: the demo was set up before; foreign: someone's own data, leave it. */
export async function demoState(db: Db): Promise<DemoState> {
  if (await db('providers').where({ name: DEMO_PROVIDERS[0]!.name }).first('id')) return 'present';
  const [{ n }] = (await db.raw('SELECT (SELECT count(*) FROM accounts) + (SELECT count(*) FROM providers) AS n')).rows as [{ n: string }];
  return Number(n) === 0 ? 'fresh' : 'foreign';
}

/** Providers pointing at the demo provider's current address, and the priced models. Needs no Temporal. */
export async function ensureDemoRouting(db: Db, config: Config, providerUrl: string): Promise<void> {
  const ops = staffOperations({ db, clock: systemClock, config });
  await db.transaction(async (trx) => {
    await trx.raw('SELECT pg_advisory_xact_lock(hashtext(?))', [LOCK]);
    for (const p of DEMO_PROVIDERS) {
      const baseUrl = `${providerUrl}${p.path}`;
      const row = await db('providers').where({ name: p.name }).first('id', 'base_url');
      if (!row) await ops.addProvider({ name: p.name, baseUrl, kind: p.kind });
      // DEV_DEMO_PROVIDER_PORT may have changed since the row was made; the row is the demo's own.
      else if (row.base_url !== baseUrl) await db('providers').where({ id: row.id }).update({ base_url: baseUrl });
    }
    for (const m of DEMO_MODELS) {
      if (!(await db('models').where({ public_name: m.name }).first('id'))) await ops.addModel(m);
    }
  });
}

export interface DemoAccount {
  accountId: string;
  accountName: string;
  balance: string;
  currency: string;
  /** Only when created by this call: shown once. */
  apiKey?: string;
  keyPrefix?: string;
  staffEmail: string;
  /** Only when created by this call: shown once. */
  staffPassword?: string;
}

/** The account with its grant, a key and a console sign-in. Needs a worker for the grant (topUp workflow). */
export async function ensureDemoAccount(db: Db, config: Config, client: Client): Promise<DemoAccount> {
  const ops = staffOperations({ db, clock: systemClock, config });
  const ledger = ledgerOperations({ db, billing: config.billing, temporal: { client, taskQueue: config.temporal.taskQueue } });
  return db.transaction(async (trx) => {
    await trx.raw('SELECT pg_advisory_xact_lock(hashtext(?))', [LOCK]);
    const existing = await db('users').where({ email: DEMO_EMAIL }).first('id', 'account_id');
    let accountId: string;
    let userId: string;
    if (existing) {
      accountId = existing.account_id;
      userId = existing.id;
    } else {
      const account = await ops.createAccount({ name: 'Demo Company', plan: 'prepaid', country: 'DE', billingEmail: DEMO_EMAIL });
      accountId = account.id;
      userId = (await ops.createUser({ accountId, name: 'Dana Demo', email: DEMO_EMAIL, jobTitle: 'Developer' })).id;
    }
    if (!(await db('ledger_entries').where({ account_id: accountId, kind: 'grant' }).first('id'))) {
      // Per account: the Temporal state (.data/temporal.db) may outlive the database, and a grant workflow found there would credit nothing here.
      await ledger.createTopUp({ accountId, amount: DEMO_CREDIT, reference: `${DEMO_GRANT_REFERENCE}:${accountId}`, kind: 'grant' }, 'dev:demo');
    }
    let apiKey: string | undefined;
    let keyPrefix: string | undefined;
    const key = await db('api_keys').where({ account_id: accountId }).whereNull('revoked_at').first('prefix');
    if (key) keyPrefix = key.prefix;
    else {
      const created = await ops.createKey({ accountId, userId, name: 'demo' });
      apiKey = created.key;
      keyPrefix = created.prefix;
    }
    let staffPassword: string | undefined;
    if (!(await db('staff_users').whereRaw('lower(email) = ?', [DEMO_EMAIL]).first('id'))) {
      staffPassword = randomBytes(12).toString('base64url');
      await createStaffUser(db, { email: DEMO_EMAIL, name: 'Demo Admin', role: 'admin', password: staffPassword });
    }
    const balance = await ledger.balance({ accountId, limit: 1 });
    const account = await ops.getAccount({ id: accountId });
    return { accountId, accountName: account.name, balance: balance.balanceRounded, currency: balance.currency, apiKey, keyPrefix, staffEmail: DEMO_EMAIL, staffPassword };
  });
}
