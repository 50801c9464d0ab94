import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, untilTrue } from '../helpers/eventually';
import { Money } from '../../src/shared/money.rules';
import { postEntry } from '../../src/ledger/ledger.data';
import { testConfig, testDb } from '../helpers/env';
import { startFakeUpstream, type FakeUpstream } from '../helpers/fakeUpstream';
import { createCustomer, startTestGateway, UPSTREAM_KEY } from '../helpers/gateway';
import { withTestWorker } from '../helpers/worker';

/**
 * The balance gate with exact prices: input is free and every output token
 * costs 1.00, the provider answers with one output token, and clients ask for
 * max_tokens 1. So each request reserves exactly 1.00 and costs exactly 1.00.
 */
const config = testConfig();
const db = testDb(config);
const PRICES = { input: '0', output: '1000000' };
let upstream: FakeUpstream;

beforeAll(async () => {
  upstream = await startFakeUpstream({ apiKey: UPSTREAM_KEY });
  upstream.setDefault({ kind: 'ok', completionTokens: 1, promptTokens: 5 });
});
afterAll(async () => {
  await upstream.close();
  await db.destroy();
});

const ask = (url: string, key: string, model: string) =>
  fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model, max_tokens: 1, messages: [{ role: 'user', content: 'one token please' }] }),
  });

async function settledBalance(accountId: string) {
  await untilTrue(async () => Number((await db('usage_events').where({ account_id: accountId }).whereNull('settled_at').count('* as n').first())!.n) === 0, {
    timeoutMs: 30_000,
    message: "the account's usage to be settled",
  });
  const b = await db('account_balances').where({ account_id: accountId }).first();
  const sum = await db('ledger_entries').where({ account_id: accountId }).sum({ s: 'amount' }).first();
  return { balance: new Money(b.balance), entries: new Money(sum!.s), held: new Money(b.held) };
}

describe('balance gate', () => {
  it('lets a 10.00 prepaid account spend exactly 10.00, then refuses with 402 insufficient_quota, and takes a top-up within seconds', async () => {
    const c = await createCustomer(db, upstream.url, { prices: PRICES, credit: '10' });
    const gw = await startTestGateway({ GATEWAY_HOLD_SLICE: '3' }, config);
    try {
      await withTestWorker(config, db, async () => {
        const statuses: number[] = [];
        for (let i = 0; i < 12; i++) statuses.push((await ask(gw.url, c.key, c.model)).status);
        expect(statuses.filter((s) => s === 200)).toHaveLength(10);
        expect(statuses.slice(10)).toEqual([402, 402]);

        const refused = await ask(gw.url, c.key, c.model);
        const body = (await refused.json()) as { error: { type: string; code: string } };
        expect(body.error).toMatchObject({ type: 'insufficient_quota', code: 'insufficient_quota' });
        const client = new OpenAI({ apiKey: c.key, baseURL: `${gw.url}/v1`, maxRetries: 0 });
        const err = await client.chat.completions.create({ model: c.model, max_tokens: 1, messages: [{ role: 'user', content: 'x' }] }).catch((e: unknown) => e);
        expect((err as InstanceType<typeof OpenAI.APIError>).status).toBe(402);

        await gw.batcher.flush();
        const books = await settledBalance(c.accountId);
        expect(books.balance.toFixed()).toBe('0');
        expect(books.entries.eq(books.balance)).toBe(true);

        await postEntry(db, { accountId: c.accountId, kind: 'topup', contra: 'cash', amount: new Money(2), idempotencyKey: `late-topup-${c.accountId}`, referenceType: 'test', referenceId: 'x', actor: 'test' }, { overdraftAllowance: new Money(0) });
        // A refusal is cached for one second, so the top-up counts at the gate within a second or two.
        await eventually(async () => expect((await ask(gw.url, c.key, c.model)).status).toBe(200), { timeoutMs: 5_000, intervalMs: 200, message: 'the gate to take the top-up' });
      });
    } finally {
      await gw.stop();
    }
  });

  it('holds across two gateway instances under a burst: no more is spent than the account had', async () => {
    const c = await createCustomer(db, upstream.url, { prices: PRICES, credit: '5' });
    const a = await startTestGateway({ GATEWAY_INSTANCE_ID: 'gw-a', GATEWAY_HOLD_SLICE: '2' }, config);
    const b = await startTestGateway({ GATEWAY_INSTANCE_ID: 'gw-b', GATEWAY_HOLD_SLICE: '2' }, config);
    try {
      await withTestWorker(config, db, async () => {
        const burst = await Promise.all(Array.from({ length: 30 }, (_, i) => ask(i % 2 ? a.url : b.url, c.key, c.model).then((r) => r.status)));
        expect(burst.filter((s) => s === 200)).toHaveLength(5);
        expect(burst.filter((s) => s === 402)).toHaveLength(25);
        await Promise.all([a.batcher.flush(), b.batcher.flush()]);
        const books = await settledBalance(c.accountId);
        expect(books.balance.toFixed()).toBe('0');
        expect(books.entries.eq(books.balance)).toBe(true);
      });
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
    // With both instances stopped, every hold was closed and nothing stays reserved.
    const held = await db('account_balances').where({ account_id: c.accountId }).first();
    expect(new Money(held.held).toFixed()).toBe('0');
  });

  it('lets a postpaid account accrue usage up to its credit limit', async () => {
    const c = await createCustomer(db, upstream.url, { prices: PRICES, credit: '0', plan: 'postpaid', creditLimit: '3' });
    const gw = await startTestGateway({}, config);
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) statuses.push((await ask(gw.url, c.key, c.model)).status);
      expect(statuses).toEqual([200, 200, 200, 402, 402]);
    } finally {
      await gw.stop();
    }
  });
});
