import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Config } from '../../src/config';
import { systemClock } from '../../src/clock';
import type { Db } from '../../src/db/knex';
import { startGatewayServer } from '../../src/gateway/server';
import { accountsService } from '../../src/accounts/accounts.service';
import { postEntry } from '../../src/ledger/ledger.data';
import { Money } from '../../src/shared/money.rules';
import { testConfig } from './env';
import { startFakeAnthropic } from './fakeAnthropic';
import { startFakeUpstream } from './fakeUpstream';

/** Of the only form the gateway reads a provider credential from. */
export const UPSTREAM_KEY_ENV = 'PROVIDER_FAKE_UPSTREAM_API_KEY';
export const UPSTREAM_KEY = 'sk-fake-upstream';

/**
 * A real gateway in this process, on a free port, with its own data dir (journal) and short batch interval.
 * `env` is the environment it takes provider credentials from (as `mixroute gateway` takes process.env).
 */
export async function startTestGateway(overrides: Record<string, string> = {}, base?: Config, env: Record<string, string> = {}) {
  const dataDir = overrides.DATA_DIR ?? fs.mkdtempSync(path.join(os.tmpdir(), 'mixroute-gw-'));
  const config = testConfig({
    GATEWAY_PORT: '0',
    DATA_DIR: dataDir,
    METERING_BATCH_MS: '50',
    GATEWAY_ROUTING_REFRESH_MS: '200',
    ...(base ? { TEMPORAL_TASK_QUEUE: base.temporal.taskQueue } : {}),
    ...overrides,
  });
  const gw = await startGatewayServer(config, { [UPSTREAM_KEY_ENV]: UPSTREAM_KEY, ...env });
  return { ...gw, config, dataDir };
}

export interface Customer {
  accountId: string;
  userId: string;
  key: string;
  keyId: string;
  model: string;
  provider: string;
}

/** A provider pointing at `upstreamUrl`, a priced model, and an account with a user and a key. */
export async function createCustomer(
  db: Db,
  upstreamUrl: string,
  opts: {
    rateLimitRpm?: number;
    prices?: { input: string; output: string; cached?: string };
    fallbackUrls?: string[];
    /** Credit granted to the account (default 100; '0' for none). */
    credit?: string;
    plan?: 'prepaid' | 'postpaid';
    creditLimit?: string;
  } = {},
): Promise<Customer> {
  const ops = accountsService({ db, clock: systemClock });
  const tag = randomUUID().slice(0, 8);
  const provider = `fake-${tag}`;
  await ops.addProvider({ name: provider, baseUrl: upstreamUrl, apiKeyEnv: UPSTREAM_KEY_ENV });
  const model = `test-model-${tag}`;
  const prices = opts.prices ?? { input: '2.5', output: '10', cached: '1.25' };
  const m = await ops.addModel({
    name: model,
    provider,
    upstreamModel: 'fake-model',
    inputPerMtok: prices.input,
    outputPerMtok: prices.output,
    ...(prices.cached ? { cachedInputPerMtok: prices.cached } : {}),
    effectiveFrom: '2020-01-01T00:00:00Z',
  });
  for (const [i, url] of (opts.fallbackUrls ?? []).entries()) {
    const name = `fake-${tag}-fb${i}`;
    const p = await ops.addProvider({ name, baseUrl: url, apiKeyEnv: UPSTREAM_KEY_ENV });
    await db('model_fallbacks').insert({ model_id: m.id, position: i + 1, provider_id: p.id, upstream_model: 'fake-model' });
  }
  const account = await ops.createAccount({
    name: `Customer ${tag}`,
    ...(opts.plan ? { plan: opts.plan } : {}),
    ...(opts.creditLimit ? { creditLimit: opts.creditLimit } : {}),
  });
  const credit = opts.credit ?? '100';
  if (credit !== '0') {
    await postEntry(
      db,
      {
        accountId: account.id,
        kind: 'grant',
        contra: 'promotions',
        amount: new Money(credit),
        idempotencyKey: `test-grant:${account.id}`,
        referenceType: 'test',
        referenceId: tag,
        actor: 'test',
      },
      { overdraftAllowance: new Money(0) },
    );
  }
  const user = await ops.createUser({ accountId: account.id, name: `User ${tag}`, email: `user-${tag}@example.com` });
  const key = await ops.createKey({ accountId: account.id, userId: user.id, ...(opts.rateLimitRpm ? { rateLimitRpm: opts.rateLimitRpm } : {}) });
  return { accountId: account.id, userId: user.id, key: key.key, keyId: key.id, model, provider };
}

/**
 * The Anthropic tests' upstreams: a fake Anthropic provider and a fake
 * OpenAI-compatible one (the customer's), the customer, and the Anthropic
 * provider added (named `anthropic-<tag>`); models are the caller's.
 */
export async function startAnthropicUpstreams(db: Db) {
  const anthropicUp = await startFakeAnthropic({ apiKey: UPSTREAM_KEY });
  const openaiUp = await startFakeUpstream({ apiKey: UPSTREAM_KEY });
  const customer = await createCustomer(db, openaiUp.url);
  const ops = accountsService({ db, clock: systemClock });
  const tag = customer.provider.slice(5);
  const provider = await ops.addProvider({ name: `anthropic-${tag}`, baseUrl: anthropicUp.url, apiKeyEnv: UPSTREAM_KEY_ENV, kind: 'anthropic' });
  return { anthropicUp, openaiUp, customer, ops, tag, provider };
}
