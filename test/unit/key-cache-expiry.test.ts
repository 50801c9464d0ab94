import { describe, expect, it } from 'vitest';
import { hashSecret, issueSecret } from '../../src/auth/secrets';
import { KeyCache, type Caller } from '../../src/gateway/keyCache';

/**
 * A key's expiry is decided at each authentication against the clock, so the
 * cache (which may hold a key for up to 5 s) cannot carry it past its instant.
 * The clock is injected: the cache's `now` is the one source of time.
 */
const T0 = Date.UTC(2027, 0, 1, 12, 0, 0);

function caller(expiresAt: number | null): Caller {
  return {
    apiKeyId: '00000000-0000-4000-8000-000000000001',
    accountId: '00000000-0000-4000-8000-000000000002',
    userId: null,
    rateLimitRpm: null,
    prepaid: true,
    kind: 'inference',
    expiresAt,
    spendLimit: null,
    limitWindow: null,
  } as Caller;
}

describe('key cache and key expiry', () => {
  it('refuses a cached key from its expiry instant on, without waiting for the cache entry to lapse', async () => {
    let now = T0;
    let lookups = 0;
    const key = issueSecret('api_key').secret;
    const cache = new KeyCache(
      async () => {
        lookups++;
        return caller(T0 + 1_000);
      },
      5_000,
      () => now,
    );
    const first = await cache.authenticate(`Bearer ${key}`);
    expect(first.ok).toBe(true);

    now = T0 + 999;
    expect((cache.authenticate(`Bearer ${key}`) as { ok: boolean }).ok).toBe(true);

    now = T0 + 1_000;
    const expired = cache.authenticate(`Bearer ${key}`);
    expect(expired).toEqual({ ok: false, reason: 'expired_key', expiredAt: T0 + 1_000 });
    // Decided from the cached entry: the database was asked once.
    expect(lookups).toBe(1);
  });

  it('refuses a key that the lookup returns already expired, and serves a key without expiry', async () => {
    const now = T0;
    const expiredKey = issueSecret('api_key').secret;
    const foreverKey = issueSecret('api_key').secret;
    const expiredHash = hashSecret(expiredKey);
    const cache = new KeyCache(async (hash) => caller(hash === expiredHash ? T0 - 1 : null), 5_000, () => now);
    expect(await cache.authenticate(`Bearer ${expiredKey}`)).toEqual({ ok: false, reason: 'expired_key', expiredAt: T0 - 1 });
    expect((await cache.authenticate(`Bearer ${foreverKey}`)).ok).toBe(true);
  });
});
