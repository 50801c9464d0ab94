import { setTimeout as sleep } from 'node:timers/promises';

/**
 * The one way tests wait for something that happens asynchronously (a row settled, a mail
 * written, a port closed): retry a check until it passes or a deadline passes.
 *
 * The deadline is the promise the test makes ("a revoked key stops working within 5 s"), so
 * choose `timeoutMs` from the requirement, not from how long it took on your machine. It is
 * a deadline, not a timed assertion: finishing early is never checked.
 *
 * Real timers from node:timers/promises, so a test that fakes the global timers cannot
 * freeze the wait.
 */
export interface EventuallyOptions {
  /** Give up after this long: the promise under test. */
  timeoutMs: number;
  /** Pause between attempts; 100 ms unless given. */
  intervalMs?: number;
  /** What is awaited, for the failure message ("the revoked key to be refused"); fn's source if not given. */
  message?: string;
}

/** Thrown by a check to stop waiting at once: the awaited thing can no longer happen (the process exited). */
export class StopWaiting extends Error {
  override name = 'StopWaiting';
}

/** Raised when the deadline passes; `cause` is the check's last failure. */
export class EventuallyTimeout extends Error {
  override name = 'EventuallyTimeout';
}

const describeError = (err: unknown): string => (err instanceof Error ? err.message : String(err));

const describeFn = (fn: () => unknown): string => {
  const src = fn.toString().replace(/\s+/g, ' ');
  return src.length > 200 ? `${src.slice(0, 200)}…` : src;
};

/**
 * Calls fn until it returns without throwing, and resolves with what it returned. A check is
 * therefore written with expect() (its failure message becomes the report), or with untilTrue
 * for a plain condition. An attempt still running at the deadline counts as a failure too, so
 * a hung query cannot hold the test past its deadline. A StopWaiting thrown by fn is rethrown
 * at once.
 */
export async function eventually<T>(fn: () => T | Promise<T>, options: EventuallyOptions): Promise<T> {
  const { timeoutMs, intervalMs = 100 } = options;
  const deadline = performance.now() + timeoutMs;
  let attempts = 0;
  let lastError: unknown = 'none finished';
  for (;;) {
    attempts += 1;
    const remaining = deadline - performance.now();
    const attempt = Promise.resolve().then(fn);
    const timer = new AbortController();
    const outcome = await Promise.race([
      attempt.then(
        (value) => ({ done: true as const, value }),
        (error: unknown) => ({ done: false as const, error }),
      ),
      sleep(Math.max(remaining, 0), undefined, { signal: timer.signal }).then(
        () => ({ done: false as const, error: new Error(`the last attempt was still running at the deadline (the one before: ${describeError(lastError)})`) }),
        () => ({ done: false as const, error: undefined }),
      ),
    ]);
    timer.abort();
    if (outcome.done) return outcome.value;
    if (outcome.error instanceof StopWaiting) throw outcome.error;
    lastError = outcome.error;
    if (performance.now() + intervalMs > deadline) {
      const what = options.message ?? describeFn(fn);
      throw new EventuallyTimeout(`${what}: not within ${timeoutMs} ms (${attempts} attempts); last failure: ${describeError(lastError)}`, {
        cause: lastError,
      });
    }
    await sleep(intervalMs);
  }
}

type Falsy = false | 0 | '' | null | undefined;

/**
 * eventually() for a condition: resolves with fn's first truthy value (a row, a mail, `true`).
 * The failure message reports the last value fn returned, or its last error.
 */
export function untilTrue<T>(fn: () => T | Promise<T>, options: EventuallyOptions): Promise<Exclude<T, Falsy>> {
  return eventually(async () => {
    const value = await fn();
    if (!value) throw new Error(`the check returned ${JSON.stringify(value) ?? String(value)}`);
    return value as Exclude<T, Falsy>;
  }, { ...options, message: options.message ?? describeFn(fn) });
}
