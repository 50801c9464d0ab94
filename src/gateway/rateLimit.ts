/**
 * Per-key requests-per-minute limit as a token bucket (burst up to the
 * per-minute figure, refilled continuously). It is kept per gateway instance:
 * with N instances behind a balancer a key can reach at most N times its
 * limit. That bound is documented; a shared limiter would put a database or
 * cache round trip on every request.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; updated: number }>();

  constructor(private readonly now: () => number = Date.now, private readonly maxKeys = 100_000) {}

  /** Takes one request from the key's bucket; returns the seconds to wait when refused. */
  take(keyId: string, rpm: number): { allowed: true; remaining: number } | { allowed: false; retryAfterSeconds: number } {
    const t = this.now();
    let b = this.buckets.get(keyId);
    if (!b) {
      if (this.buckets.size >= this.maxKeys) this.buckets.clear();
      b = { tokens: rpm, updated: t };
      this.buckets.set(keyId, b);
    }
    b.tokens = Math.min(rpm, b.tokens + ((t - b.updated) / 60_000) * rpm);
    b.updated = t;
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return { allowed: true, remaining: Math.floor(b.tokens) };
    }
    return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil(((1 - b.tokens) * 60) / rpm)) };
  }
}
