import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { nameAccount } from '../../src/metering/batcher';
import { allShards, shardOf } from '../../src/metering/shards.rules';
import { workflowIds } from '../../src/temporal/conventions';
import type { UsageRecordedSignal } from '../../workflows/messages';

describe('settlement shards', () => {
  it('maps an account id to the same shard every time, from the id alone', () => {
    expect(shardOf('3f2a9c1e-0000-4000-8000-00000000ffff', 16)).toBe(0xffff % 16);
    expect(shardOf('3f2a9c1e-0000-4000-8000-0000ffffffff', 16)).toBe(15);
    expect(shardOf('3F2A9C1E-0000-4000-8000-0000FFFFFFFE', 16)).toBe(14);
    expect(shardOf('00000000-0000-4000-8000-000000000005', 1)).toBe(0);
    // PostgreSQL's other spellings of the same uuid land in the same shard.
    expect(shardOf('{3F2A9C1E00004000800000000000FFFE}', 16)).toBe(14);
    const id = randomUUID();
    expect(shardOf(id, 16)).toBe(shardOf(id, 16));
  });

  it('spreads random account ids evenly over the shards', () => {
    const counts = new Array<number>(16).fill(0);
    for (let i = 0; i < 16_000; i++) counts[shardOf(randomUUID(), 16)]! += 1;
    // Each shard expects 1,000; 5 standard deviations is about ±160.
    for (const c of counts) expect(Math.abs(c - 1_000)).toBeLessThan(200);
  });

  it('spreads sequential ids round-robin', () => {
    const ids = Array.from({ length: 32 }, (_, i) => `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`);
    expect(ids.map((id) => shardOf(id, 16))).toEqual([...allShards(16), ...allShards(16)]);
  });

  it('refuses what is not an account id or a shard count', () => {
    expect(() => shardOf('not-a-uuid', 16)).toThrow(/not a uuid/);
    expect(() => shardOf('3f2a9c1e-0000-4000-8000-00000000ffffff', 16)).toThrow(/not a uuid/);
    expect(() => shardOf(randomUUID(), 0)).toThrow(/positive integer/);
  });

  it('names shard workflows by shard, qualified by a task queue other than the default', () => {
    expect(workflowIds.settlement(3, 'mixroute')).toBe('settlement:3');
    expect(workflowIds.settlement(3, 'test-abc')).toBe('settlement:test-abc:3');
  });
});

describe("a shard wake-up's account names", () => {
  it('names each account once, up to 1,000, then asks for a sweep; without scanning the names for each record', () => {
    // The list counts its own scans (includes, indexOf): one per record would be quadratic in a batch.
    let scans = 0;
    const accounts: string[] = [];
    for (const method of ['includes', 'indexOf'] as const) {
      const scan = accounts[method].bind(accounts) as (v: string) => unknown;
      Object.defineProperty(accounts, method, { value: (v: string) => ((scans += 1), scan(v)) });
    }
    const summary: UsageRecordedSignal = { events: 0, cost: '0', lastOccurredAt: '', accounts };
    const ids = Array.from({ length: 1_000 }, () => randomUUID());
    for (const id of [...ids, ...ids]) nameAccount(summary, id);
    expect(scans).toBe(0);
    expect(summary.accounts).toEqual(ids);
    expect(summary.sweep).toBeUndefined();
    nameAccount(summary, randomUUID());
    expect(summary).toMatchObject({ sweep: true });
    expect(summary.accounts).toBeUndefined();
  });
});
