import { describe, expect, it } from 'vitest';
import { RateLimiter } from '../../src/gateway/rateLimit';

describe('per-key rate limiter', () => {
  it('allows a burst of the per-minute figure, then refuses with the wait', () => {
    let now = 0;
    const limiter = new RateLimiter(() => now);
    for (let i = 0; i < 3; i++) expect(limiter.take('k', 3).allowed).toBe(true);
    const refused = limiter.take('k', 3);
    expect(refused).toEqual({ allowed: false, retryAfterSeconds: 20 });
    now += 20_000; // one request's worth refilled at 3 per minute
    expect(limiter.take('k', 3).allowed).toBe(true);
    expect(limiter.take('k', 3).allowed).toBe(false);
  });

  it('keeps keys apart', () => {
    const limiter = new RateLimiter(() => 0);
    expect(limiter.take('a', 1).allowed).toBe(true);
    expect(limiter.take('a', 1).allowed).toBe(false);
    expect(limiter.take('b', 1).allowed).toBe(true);
  });
});
