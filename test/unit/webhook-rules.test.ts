import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config';
import { endpointUrlProblem, nextAttemptAtMs, retryDelayMs, shouldDisable, webhookPayload } from '../../src/webhooks/webhooks.rules';

const DAY = 86_400_000;
const defaults = loadConfig({}).webhooks;

describe('retry schedule', () => {
  it('doubles from the initial wait up to the cap', () => {
    const policy = { initialMs: 5_000, maxIntervalMs: 60_000, windowMs: DAY };
    expect([1, 2, 3, 4, 5, 6].map((n) => retryDelayMs(n, policy))).toEqual([5_000, 10_000, 20_000, 40_000, 60_000, 60_000]);
    expect(retryDelayMs(10_000, policy)).toBe(60_000);
  });

  it('with the defaults, ends within three days of the first attempt, after a bounded number of attempts', () => {
    expect(defaults.retry.windowMs).toBe(3 * DAY);
    const first = Date.UTC(2026, 11, 1);
    let now = first;
    let attempts = 1;
    for (;;) {
      const next = nextAttemptAtMs(attempts, first, now, defaults.retry);
      if (next === null) break;
      expect(next).toBeGreaterThan(now);
      now = next;
      attempts++;
    }
    expect(now - first).toBeLessThanOrEqual(3 * DAY);
    // The last wait would have crossed the window: the schedule used most of it.
    expect(now - first).toBeGreaterThan(3 * DAY - defaults.retry.maxIntervalMs);
    expect(attempts).toBeGreaterThan(10);
    expect(attempts).toBeLessThan(40);
  });

  it('the window cannot be configured past three days', () => {
    expect(() => loadConfig({ WEBHOOK_RETRY_WINDOW_S: String(3 * 86_400 + 1) })).toThrow(/WEBHOOK_RETRY_WINDOW_S/);
  });
});

describe('disabling', () => {
  const policy = { disableAfterFailures: 5, disableMinFailingS: 3_600 };
  const now = new Date('2026-12-04T12:00:00Z');
  it('needs both enough failures in a row and enough time failing', () => {
    expect(shouldDisable(4, new Date(now.getTime() - DAY), now, policy)).toBe(false);
    expect(shouldDisable(50, new Date(now.getTime() - 60_000), now, policy)).toBe(false);
    expect(shouldDisable(5, new Date(now.getTime() - 3_600_000), now, policy)).toBe(true);
  });
});

describe('payload', () => {
  it('is type, timestamp and data, with the event and account ids', () => {
    const body = webhookPayload({ id: 'e1', account_id: 'a1', type: 'topup.succeeded', occurred_at: new Date('2026-12-04T10:00:00Z'), data: { amount: '5.00' } });
    expect(JSON.parse(body)).toEqual({ type: 'topup.succeeded', timestamp: '2026-12-04T10:00:00.000Z', data: { amount: '5.00', eventId: 'e1', accountId: 'a1' } });
  });
});

describe('endpoint URLs', () => {
  it('are absolute http(s) URLs without credentials or fragments', () => {
    expect(endpointUrlProblem('https://hooks.example.com/x?y=1')).toBeNull();
    for (const bad of ['ftp://x.example/', 'https://u:p@x.example/', 'https://x.example/#f', '/relative', `https://x.example/${'a'.repeat(2050)}`]) {
      expect(endpointUrlProblem(bad)).not.toBeNull();
    }
  });
});
