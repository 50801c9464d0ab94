import { isIP } from 'node:net';
import { LruMap } from './lru';

/**
 * Failed authentications per source address, checked before any database
 * lookup: a token bucket per address holding `perMinute` failures, refilled
 * continuously. A request from an address whose bucket is empty is refused
 * (429) without looking at its key. A key lookup that must go to the database
 * takes a token up front and gives it back when the key turns out valid, so
 * concurrent lookups from one address never exceed the bucket, and clients
 * with valid keys are never charged. Per instance, like the per-key limiter:
 * with N instances an address gets at most N times the figure.
 *
 * IPv6 addresses are counted per /64 (one customer's allocation), or a single
 * host could rotate through its prefix for fresh buckets.
 */
export class AuthFailureLimiter {
  private readonly buckets: LruMap<string, { tokens: number; updated: number }>;

  constructor(
    private readonly perMinute: number,
    maxAddresses: number,
    private readonly now: () => number = Date.now,
  ) {
    this.buckets = new LruMap(maxAddresses);
  }

  /** Seconds until this address may try again; 0 when it may now. */
  retryAfter(address: string | null): number {
    if (this.perMinute <= 0) return 0;
    const b = this.buckets.peek(addressKey(address));
    if (!b) return 0;
    const tokens = this.refill(b);
    return tokens >= 1 ? 0 : Math.max(1, Math.ceil(((1 - tokens) * 60) / this.perMinute));
  }

  /** Takes a token before a key lookup that will reach the database; false when none is left. */
  admit(address: string | null): boolean {
    if (this.perMinute <= 0) return true;
    const b = this.bucket(address);
    if (this.refill(b) < 1) return false;
    b.tokens -= 1;
    return true;
  }

  /** A failure that took no token up front (answered without the database). */
  fail(address: string | null): void {
    if (this.perMinute <= 0) return;
    const b = this.bucket(address);
    b.tokens = Math.max(0, this.refill(b) - 1);
  }

  /** The key admitted by `admit` was valid (or could not be checked): not a failure. */
  refund(address: string | null): void {
    if (this.perMinute <= 0) return;
    const b = this.buckets.peek(addressKey(address));
    if (b) b.tokens = Math.min(this.perMinute, this.refill(b) + 1);
  }

  private bucket(address: string | null) {
    const key = addressKey(address);
    let b = this.buckets.get(key);
    if (!b) {
      b = { tokens: this.perMinute, updated: this.now() };
      this.buckets.set(key, b);
    }
    return b;
  }

  private refill(b: { tokens: number; updated: number }): number {
    const t = this.now();
    if (t > b.updated) {
      b.tokens = Math.min(this.perMinute, b.tokens + ((t - b.updated) / 60_000) * this.perMinute);
      b.updated = t;
    }
    return b.tokens;
  }
}

/** IPv4 as is (IPv4-mapped IPv6 unwrapped), IPv6 by its /64 prefix. */
export function addressKey(address: string | null): string {
  if (!address) return 'unknown';
  if (address.startsWith('::ffff:') && isIP(address.slice(7)) === 4) return address.slice(7);
  if (isIP(address) !== 6) return address;
  return `${expandIPv6(address).slice(0, 4).join(':')}::/64`;
}

function expandIPv6(address: string): string[] {
  const [head, tail] = address.split('::') as [string, string | undefined];
  const parts = (s: string | undefined) => (s ? s.split(':') : []);
  const left = parts(head);
  const right = parts(tail);
  // A trailing dotted IPv4 part stands for two groups; only the first four groups matter here.
  const missing = Math.max(0, 8 - left.length - right.length);
  const groups = tail === undefined ? left : [...left, ...Array<string>(missing).fill('0'), ...right];
  return groups.map((g) => (g.includes('.') ? g : (parseInt(g, 16) || 0).toString(16)));
}
