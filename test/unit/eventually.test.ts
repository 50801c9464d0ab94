import { describe, expect, it } from 'vitest';
import { eventually, EventuallyTimeout, StopWaiting, untilTrue } from '../helpers/eventually';

describe('eventually', () => {
  it('resolves with the first value returned without throwing, after retrying', async () => {
    let calls = 0;
    const value = await eventually(
      () => {
        calls += 1;
        if (calls < 3) throw new Error(`not yet (${calls})`);
        return 'ready';
      },
      { timeoutMs: 5_000, intervalMs: 1 },
    );
    expect(value).toBe('ready');
    expect(calls).toBe(3);
  });

  it('past the deadline throws, naming what was awaited and the last failure', async () => {
    let calls = 0;
    const failure = await eventually(
      async () => {
        calls += 1;
        expect(calls).toBe(-1);
      },
      { timeoutMs: 50, intervalMs: 5, message: 'the counter to go negative' },
    ).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(EventuallyTimeout);
    const message = (failure as Error).message;
    expect(message).toMatch(/^the counter to go negative: not within 50 ms \(\d+ attempts\); last failure: /);
    // The last attempt's failure, not the first one's.
    expect(message).toContain(`expected ${calls} to be -1`);
    expect(calls).toBeGreaterThan(1);
    expect((failure as Error).cause).toBeInstanceOf(Error);
  });

  it('names the check by its source when no message is given', async () => {
    const failure = await eventually(() => JSON.parse('{'), { timeoutMs: 20, intervalMs: 5 }).catch((e: unknown) => e);
    expect((failure as Error).message).toContain('JSON.parse(');
  });

  it('does not wait past the deadline for an attempt that hangs', async () => {
    const failure = await eventually(() => new Promise<never>(() => {}), { timeoutMs: 50, message: 'a hung check' }).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(EventuallyTimeout);
    expect((failure as Error).message).toContain('still running at the deadline');
  });

  it('stops at once on StopWaiting', async () => {
    let calls = 0;
    const failure = await eventually(
      () => {
        calls += 1;
        throw new StopWaiting('the process exited');
      },
      { timeoutMs: 60_000, intervalMs: 1 },
    ).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(StopWaiting);
    expect(calls).toBe(1);
  });
});

describe('untilTrue', () => {
  it('resolves with the first truthy value', async () => {
    const seen = [null, 0, undefined, { id: 7 }];
    expect(await untilTrue(() => seen.shift(), { timeoutMs: 5_000, intervalMs: 1 })).toEqual({ id: 7 });
  });

  it('reports the last value the check returned', async () => {
    const failure = await untilTrue(async () => 0, { timeoutMs: 20, intervalMs: 5, message: 'the queue to fill' }).catch((e: unknown) => e);
    expect((failure as Error).message).toMatch(/^the queue to fill: not within 20 ms .*last failure: the check returned 0$/);
  });
});
