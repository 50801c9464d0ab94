import { randomBytes } from 'node:crypto';
import type { Client } from '@temporalio/client';
import { systemClock } from '../clock';
import type { Config } from '../config';
import type { Db } from '../db/knex';
import { ledgerService } from '../ledger/ledger.service';
import { accountsService } from '../accounts/accounts.service';
import { staffService } from '../staff/staff.service';
import { customerConsoleService } from '../customerConsole/customerConsole.service';
import {
  activeKeyPrefix,
  countAccountsAndProviders,
  hasGrant,
  lockDemo,
  modelExists,
  providerByName,
  providerExists,
  setProviderBaseUrl,
  staffUserExists,
  userByEmail,
} from './demo.data';

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
  if (await providerExists(db, DEMO_PROVIDERS[0]!.name)) return 'present';
  return (await countAccountsAndProviders(db)) === 0 ? 'fresh' : 'foreign';
}

/** Providers pointing at the demo provider's current address, and the priced models. Needs no Temporal. */
export async function ensureDemoRouting(db: Db, config: Config, providerUrl: string): Promise<void> {
  const ops = accountsService({ db, clock: systemClock, config });
  await db.transaction(async (trx) => {
    await lockDemo(trx, LOCK);
    for (const p of DEMO_PROVIDERS) {
      const baseUrl = `${providerUrl}${p.path}`;
      const row = await providerByName(db, p.name);
      if (!row) await ops.addProvider({ name: p.name, baseUrl, kind: p.kind });
      // DEV_DEMO_PROVIDER_PORT may have changed since the row was made; the row is the demo's own.
      else if (row.base_url !== baseUrl) await setProviderBaseUrl(db, row.id, baseUrl);
    }
    for (const m of DEMO_MODELS) {
      if (!(await modelExists(db, m.name))) await ops.addModel(m);
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
  /** The demo user's customer console (/app) password, only when set by this call: shown once. */
  customerPassword?: string;
}

/** The account with its grant, a key and a console sign-in. Needs a worker for the grant (topUp workflow). */
export async function ensureDemoAccount(db: Db, config: Config, client: Client): Promise<DemoAccount> {
  const ops = accountsService({ db, clock: systemClock, config });
  const ledger = ledgerService({ db, billing: config.billing, temporal: { client, taskQueue: config.temporal.taskQueue } });
  return db.transaction(async (trx) => {
    await lockDemo(trx, LOCK);
    const existing = await userByEmail(db, DEMO_EMAIL);
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
    if (!(await hasGrant(db, accountId))) {
      // Per account: the Temporal state (.data/temporal.db) may outlive the database, and a grant workflow found there would credit nothing here.
      await ledger.createTopUp({ accountId, amount: DEMO_CREDIT, reference: `${DEMO_GRANT_REFERENCE}:${accountId}`, kind: 'grant' }, 'dev:demo');
    }
    let apiKey: string | undefined;
    let keyPrefix = await activeKeyPrefix(db, accountId);
    if (!keyPrefix) {
      const created = await ops.createKey({ accountId, userId, name: 'demo' });
      apiKey = created.key;
      keyPrefix = created.prefix;
    }
    let staffPassword: string | undefined;
    if (!(await staffUserExists(db, DEMO_EMAIL))) {
      staffPassword = randomBytes(12).toString('base64url');
      await staffService({ db }).createUser({ email: DEMO_EMAIL, name: 'Demo Admin', role: 'admin', password: staffPassword });
    }
    let customerPassword: string | undefined;
    const customers = customerConsoleService({ db });
    if (!(await customers.hasPassword(userId))) {
      customerPassword = randomBytes(12).toString('base64url');
      await customers.setPassword(userId, customerPassword);
    }
    const balance = await ledger.balance({ accountId, limit: 1 });
    const account = await ops.getAccount({ id: accountId });
    return { accountId, accountName: account.name, balance: balance.balanceRounded, currency: balance.currency, apiKey, keyPrefix, staffEmail: DEMO_EMAIL, staffPassword, customerPassword };
  });
}
