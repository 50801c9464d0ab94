import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { Money } from '../../src/shared/money.rules';
import { systemClock } from '../../src/clock';
import { acquireHold, closeHold, expireHolds } from '../../src/ledger/holds.data';
import { postEntries, postEntry, reverseEntry, type NewEntry } from '../../src/ledger/ledger.data';
import { settleAccountUsage } from '../../src/metering/metering.service';
import { accountsService } from '../../src/accounts/accounts.service';
import { testConfig, testDb } from '../helpers/env';
import { insertUsageEvents } from '../helpers/usageEvents';

const config = testConfig();
const db = testDb(config);
afterAll(() => db.destroy());
const ops = accountsService({ db, clock: systemClock });
const none = { overdraftAllowance: new Money(0) };

async function newAccount(plan: 'prepaid' | 'postpaid' = 'prepaid', creditLimit = '0') {
  return (await ops.createAccount({ name: `Ledger ${randomUUID().slice(0, 6)}`, plan, creditLimit })).id as string;
}
const entry = (accountId: string, kind: NewEntry['kind'], amount: string, key: string = randomUUID()): NewEntry => ({
  accountId,
  kind,
  contra: kind === 'usage' ? 'revenue' : kind === 'grant' ? 'promotions' : kind === 'adjustment' ? 'adjustments' : 'cash',
  amount: new Money(amount),
  idempotencyKey: key,
  referenceType: 'test',
  referenceId: key,
  actor: 'test',
});

/** The invariant: balance = sum of the account's entries, and held = what its holds still reserve. */
async function books(accountId: string) {
  const b = await db('account_balances').where({ account_id: accountId }).first();
  const sum = await db('ledger_entries').where({ account_id: accountId }).sum({ s: 'amount' }).first();
  const holds = await db('balance_holds').where({ account_id: accountId }).select(db.raw('coalesce(sum(amount - settled), 0)::text AS h')).first();
  return { balance: new Money(b?.balance ?? 0), entries: new Money(sum?.s ?? 0), held: new Money(b?.held ?? 0), holds: new Money(holds?.h ?? 0) };
}

async function insertUsage(accountId: string, costs: string[], holdId: string | null = null) {
  await insertUsageEvents(
    db,
    costs.map((cost) => ({ account_id: accountId, occurred_at: new Date(), cost, hold_id: holdId, cache_write_tokens: 3, cache_write_1h_tokens: 1 })),
  );
}

describe('ledger', () => {
  it('refuses to edit or delete an entry: mistakes are reversed', async () => {
    const a = await newAccount();
    const { entry: e } = await postEntry(db, entry(a, 'topup', '10'), none);
    await expect(db('ledger_entries').where({ id: e.id }).update({ amount: '99' })).rejects.toThrow(/append-only/);
    await expect(db('ledger_entries').where({ id: e.id }).delete()).rejects.toThrow(/append-only/);
    const r = await reverseEntry(db, { entryId: e.id, reason: 'wrong account', actor: 'test', idempotencyKey: `rev-${e.id}` });
    expect(r.entry).toMatchObject({ kind: 'reversal', contra: 'cash', reverses_entry_id: e.id });
    expect(new Money(r.entry.amount).eq(-10)).toBe(true);
    expect((await reverseEntry(db, { entryId: e.id, reason: 'again', actor: 'test', idempotencyKey: `rev-${e.id}` })).applied).toBe(false);
    await expect(reverseEntry(db, { entryId: e.id, reason: 'twice', actor: 'test', idempotencyKey: 'other' })).rejects.toThrow(/already reversed/);
    await expect(reverseEntry(db, { entryId: r.entry.id, reason: 'undo', actor: 'test', idempotencyKey: 'x' })).rejects.toThrow(/cannot be reversed/);
    const b = await books(a);
    expect(b.balance.eq(0) && b.entries.eq(0)).toBe(true);
  });

  it('applies an idempotency key once and refuses it for a different movement', async () => {
    const a = await newAccount();
    const first = await postEntry(db, entry(a, 'topup', '5', 'pay-1-' + a), none);
    const again = await postEntry(db, entry(a, 'topup', '5.000', 'pay-1-' + a), none);
    expect(first.applied).toBe(true);
    expect(again.applied).toBe(false);
    expect(again.entry.id).toBe(first.entry.id);
    await expect(postEntry(db, entry(a, 'topup', '6', 'pay-1-' + a), none)).rejects.toThrow(/different entry/);
    expect((await books(a)).balance.eq(5)).toBe(true);
  });

  it('does not let staff debits take a prepaid account below its floor, but always posts usage', async () => {
    const a = await newAccount();
    await postEntry(db, entry(a, 'topup', '3'), none);
    await expect(postEntry(db, entry(a, 'refund', '-4'), none)).rejects.toThrow(/cannot cover/);
    await postEntry(db, entry(a, 'refund', '-2'), { overdraftAllowance: new Money(0) });
    await postEntry(db, entry(a, 'refund', '-1.5'), { overdraftAllowance: new Money('0.5') });
    await postEntry(db, entry(a, 'usage', '-7'), none);
    expect((await books(a)).balance.eq('-7.5')).toBe(true);
  });

  it('keeps balance = sum of entries under hundreds of concurrent top-ups, deductions and retries', async () => {
    const a = await newAccount();
    const keys = Array.from({ length: 120 }, (_, i) => `conc-${a}-${i}`);
    // Each movement delivered three times, concurrently, in waves of 20 movements: all of
    // them at once would only measure how long 360 transactions queue for a pool of five
    // (knex gives up acquiring after 10 s), which on a busy machine is not what this tests.
    for (let w = 0; w < keys.length; w += 20) {
      const work: Promise<unknown>[] = [];
      for (const [j, key] of keys.slice(w, w + 20).entries()) {
        const i = w + j;
        const e = i % 3 === 0 ? entry(a, 'usage', '-0.000123456789', key) : entry(a, 'topup', '1.25', key);
        for (let r = 0; r < 3; r++) work.push(postEntry(db, e, { overdraftAllowance: new Money(1000) }));
      }
      await Promise.all(work);
    }
    const b = await books(a);
    expect(b.balance.eq(b.entries)).toBe(true);
    const count = await db('ledger_entries').where({ account_id: a }).count('* as n').first();
    expect(Number(count!.n)).toBe(keys.length);
    // 80 top-ups of 1.25 and 40 deductions
    expect(b.balance.eq(new Money('100').minus(new Money('0.000123456789').mul(40)))).toBe(true);
  });

  it('never deadlocks when transactions touch several accounts in different orders', async () => {
    const [x, y] = [await newAccount(), await newAccount()];
    const transfers = Array.from({ length: 40 }, (_, i) =>
      db.transaction((trx) =>
        postEntries(
          trx,
          i % 2 === 0
            ? [entry(x, 'adjustment', '-1'), entry(y, 'adjustment', '1')]
            : [entry(y, 'adjustment', '-1'), entry(x, 'adjustment', '1')],
          { overdraftAllowance: new Money(1000) },
        ),
      ),
    );
    await Promise.all(transfers);
    const [bx, by] = [await books(x), await books(y)];
    expect(bx.balance.plus(by.balance).eq(0)).toBe(true);
    expect(bx.balance.eq(bx.entries) && by.balance.eq(by.entries)).toBe(true);
  });
});

describe('holds and settlement', () => {
  it('reserves only what is spendable, releases what settlement consumed, and returns the rest on close', async () => {
    const a = await newAccount();
    await postEntry(db, entry(a, 'topup', '2'), none);
    const hold = (await acquireHold(db, { accountId: a, need: new Money('0.5'), slice: new Money('1.5'), holder: 't', ttlMs: 60_000, overdraftAllowance: new Money(0) }))!;
    expect(hold.amount.eq('1.5')).toBe(true);
    const second = (await acquireHold(db, { accountId: a, need: new Money('0.1'), slice: new Money('5'), holder: 't', ttlMs: 60_000, overdraftAllowance: new Money(0) }))!;
    expect(second.amount.eq('0.5')).toBe(true); // all that was left
    expect(await acquireHold(db, { accountId: a, need: new Money('0.01'), slice: new Money('1'), holder: 't', ttlMs: 60_000, overdraftAllowance: new Money(0) })).toBeUndefined();

    await insertUsage(a, ['0.4', '0.2'], hold.holdId);
    const r = await settleAccountUsage(db, a, { limit: 100, overdraftAllowance: new Money(0) });
    expect(r).toMatchObject({ events: 2, cost: '0.6', more: false });
    let b = await books(a);
    expect(b.balance.eq('1.4') && b.held.eq('1.4') && b.holds.eq(b.held)).toBe(true); // 0.9 + 0.5 still reserved

    await closeHold(db, hold.holdId, new Money('0.6'));
    await closeHold(db, second.holdId, new Money('0'));
    b = await books(a);
    expect(b.held.eq(0) && b.holds.eq(0)).toBe(true);

    // Settling again changes nothing; usage_hourly holds the batch once.
    expect((await settleAccountUsage(db, a, { limit: 100, overdraftAllowance: new Money(0) })).events).toBe(0);
    const hourly = await db('usage_hourly').where({ account_id: a }).first();
    expect(hourly).toMatchObject({ requests: 2, input_tokens: 20, output_tokens: 10, cache_write_tokens: 6, cache_write_1h_tokens: 2 });
    expect(new Money(hourly.cost).eq('0.6')).toBe(true);
  });

  it('expires an abandoned hold down to what was settled', async () => {
    const a = await newAccount();
    await postEntry(db, entry(a, 'topup', '1'), none);
    const hold = (await acquireHold(db, { accountId: a, need: new Money('1'), slice: new Money('1'), holder: 'dead', ttlMs: 1_000, overdraftAllowance: new Money(0) }))!;
    await insertUsage(a, ['0.25'], hold.holdId);
    await settleAccountUsage(db, a, { limit: 100, overdraftAllowance: new Money(0) });
    await expireHolds(db, new Date(Date.now() + 5_000));
    const b = await books(a);
    expect(b.held.eq(0) && b.balance.eq('0.75')).toBe(true);
  });
});

describe('ledger model (property-based)', () => {
  type Cmd =
    | { t: 'topup'; cents: number; key: number }
    | { t: 'refund'; cents: number; key: number }
    | { t: 'hold'; cents: number }
    | { t: 'usage'; cents: number; onHold: boolean }
    | { t: 'settle' }
    | { t: 'closeHolds' }
    | { t: 'reverse'; pick: number };

  const cmd: fc.Arbitrary<Cmd> = fc.oneof(
    fc.record({ t: fc.constant('topup' as const), cents: fc.integer({ min: 1, max: 5_000 }), key: fc.integer({ min: 0, max: 6 }) }),
    fc.record({ t: fc.constant('refund' as const), cents: fc.integer({ min: 1, max: 3_000 }), key: fc.integer({ min: 0, max: 6 }) }),
    fc.record({ t: fc.constant('hold' as const), cents: fc.integer({ min: 1, max: 2_000 }) }),
    fc.record({ t: fc.constant('usage' as const), cents: fc.integer({ min: 0, max: 1_500 }), onHold: fc.boolean() }),
    fc.constant({ t: 'settle' as const }),
    fc.constant({ t: 'closeHolds' as const }),
    fc.record({ t: fc.constant('reverse' as const), pick: fc.nat() }),
  );

  it('agrees with a simple in-memory model after every step', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(cmd, { minLength: 1, maxLength: 25 }), async (cmds) => {
        const a = await newAccount();
        const m = { balance: new Money(0), held: new Money(0), unsettled: new Money(0), keys: new Map<string, Money>(), entries: [] as { id: number; amount: Money; reversed: boolean; kind: string }[] };
        const holds: { id: string; amount: Money; settled: Money; open: boolean; charged: Money }[] = [];
        for (const c of cmds) {
          const usd = (cents: number) => new Money(cents).div(100);
          if (c.t === 'topup' || c.t === 'refund') {
            const key = `${c.t}-${a}-${c.key}`;
            const amount = c.t === 'topup' ? usd(c.cents) : usd(c.cents).neg();
            const prior = m.keys.get(key);
            const spendable = m.balance.minus(m.held);
            const call = postEntry(db, { ...entry(a, c.t, amount.toFixed(), key) }, none);
            if (prior && !prior.eq(amount)) await expect(call).rejects.toThrow(/different entry/);
            else if (prior) expect((await call).applied).toBe(false);
            else if (amount.lt(0) && spendable.plus(amount).lt(0)) await expect(call).rejects.toThrow(/cannot cover/);
            else {
              const r = await call;
              m.keys.set(key, amount);
              m.balance = m.balance.plus(amount);
              m.entries.push({ id: r.entry.id, amount, reversed: false, kind: c.t });
            }
          } else if (c.t === 'hold') {
            const need = usd(c.cents);
            const spendable = m.balance.minus(m.held);
            const grant = await acquireHold(db, { accountId: a, need, slice: need, holder: 'prop', ttlMs: 60_000, overdraftAllowance: new Money(0) });
            if (spendable.lt(need)) expect(grant).toBeUndefined();
            else {
              expect(grant!.amount.eq(need)).toBe(true);
              holds.push({ id: grant!.holdId, amount: need, settled: new Money(0), open: true, charged: new Money(0) });
              m.held = m.held.plus(need);
            }
          } else if (c.t === 'usage') {
            const hold = c.onHold ? holds.find((h) => h.open) : undefined;
            const cost = usd(c.cents);
            await insertUsage(a, [cost.toFixed()], hold?.id ?? null);
            m.unsettled = m.unsettled.plus(cost);
            if (hold) hold.charged = hold.charged.plus(cost);
          } else if (c.t === 'settle') {
            await settleAccountUsage(db, a, { limit: 1000, overdraftAllowance: new Money(0) });
            m.balance = m.balance.minus(m.unsettled);
            m.unsettled = new Money(0);
            for (const h of holds) {
              const reduce = Money.min(h.charged, h.amount.minus(h.settled));
              h.settled = h.settled.plus(reduce);
              h.charged = new Money(0);
              m.held = m.held.minus(reduce);
            }
          } else if (c.t === 'closeHolds') {
            for (const h of holds.filter((x) => x.open)) {
              await closeHold(db, h.id, h.settled);
              m.held = m.held.minus(h.amount.minus(h.settled));
              h.amount = h.settled;
              h.open = false;
            }
          } else if (c.t === 'reverse') {
            const candidates = m.entries.filter((e) => !e.reversed);
            if (candidates.length === 0) continue;
            const target = candidates[c.pick % candidates.length]!;
            await reverseEntry(db, { entryId: target.id, reason: 'property test', actor: 'test', idempotencyKey: `rev-${target.id}` });
            target.reversed = true;
            m.balance = m.balance.minus(target.amount);
          }
          const b = await books(a);
          expect(b.balance.toFixed(), `balance after ${c.t}`).toBe(m.balance.toFixed());
          expect(b.entries.toFixed(), 'sum of entries').toBe(b.balance.toFixed());
          expect(b.held.toFixed(), `held after ${c.t}`).toBe(m.held.toFixed());
          expect(b.holds.toFixed(), 'holds table').toBe(b.held.toFixed());
        }
      }),
      { numRuns: 25 },
    );
  });
});
