import { describe, expect, it } from 'vitest';
import { AuthFailureLimiter, addressKey } from '../../src/gateway/authLimiter';
import { LruMap } from '../../src/gateway/lru';

describe('LRU map (key cache, auth limiter)', () => {
  it('evicts the least recently used entry, not everything, when full', () => {
    const lru = new LruMap<string, number>(3);
    lru.set('a', 1);
    lru.set('b', 2);
    lru.set('c', 3);
    expect(lru.get('a')).toBe(1); // a is now the most recently used
    lru.set('d', 4); // evicts b
    expect(lru.peek('b')).toBeUndefined();
    expect([lru.peek('a'), lru.peek('c'), lru.peek('d')]).toEqual([1, 3, 4]);
    expect(lru.size).toBe(3);
  });

  it('keeps an entry in steady use through a flood of new ones', () => {
    const lru = new LruMap<string, string>(100);
    lru.set('good-key', 'caller');
    for (let i = 0; i < 10_000; i++) {
      lru.set(`junk-${i}`, 'unknown');
      if (i % 50 === 0) expect(lru.get('good-key')).toBe('caller');
    }
    expect(lru.peek('good-key')).toBe('caller');
    expect(lru.size).toBe(100);
  });

  it('peek does not refresh, and re-setting an entry refreshes it', () => {
    const lru = new LruMap<string, number>(2);
    lru.set('a', 1);
    lru.set('b', 2);
    lru.peek('a');
    lru.set('c', 3); // a was least recently used despite the peek
    expect(lru.peek('a')).toBeUndefined();
    lru.set('b', 20);
    lru.set('d', 4); // c goes, b was refreshed by set
    expect(lru.peek('b')).toBe(20);
    expect(lru.peek('c')).toBeUndefined();
  });
});

describe('failed-authentication limiter', () => {
  it('refuses an address once its failures are used up, and tells it how long to wait', () => {
    let now = 0;
    const limiter = new AuthFailureLimiter(3, 1_000, () => now);
    for (let i = 0; i < 3; i++) {
      expect(limiter.retryAfter('198.51.100.1')).toBe(0);
      limiter.fail('198.51.100.1');
    }
    expect(limiter.retryAfter('198.51.100.1')).toBe(20);
    expect(limiter.admit('198.51.100.1')).toBe(false);
    expect(limiter.retryAfter('198.51.100.2')).toBe(0);
    now += 20_000;
    expect(limiter.retryAfter('198.51.100.1')).toBe(0);
  });

  it('charges a database lookup up front and gives it back when the key was valid', () => {
    const limiter = new AuthFailureLimiter(2, 1_000, () => 0);
    for (let i = 0; i < 10; i++) {
      expect(limiter.admit('203.0.113.5')).toBe(true);
      limiter.refund('203.0.113.5');
    }
    expect(limiter.admit('203.0.113.5')).toBe(true);
    expect(limiter.admit('203.0.113.5')).toBe(true);
    expect(limiter.admit('203.0.113.5')).toBe(false);
  });

  it('counts IPv6 per /64 and IPv4-mapped addresses as IPv4', () => {
    expect(addressKey('2001:db8:1:2:aaaa::1')).toBe(addressKey('2001:db8:1:2:bbbb:cccc:dddd:eeee'));
    expect(addressKey('2001:db8:1:2::1')).not.toBe(addressKey('2001:db8:1:3::1'));
    expect(addressKey('::ffff:192.0.2.7')).toBe('192.0.2.7');
    expect(addressKey(null)).toBe('unknown');
  });

  it('is off at 0', () => {
    const limiter = new AuthFailureLimiter(0, 100, () => 0);
    for (let i = 0; i < 100; i++) limiter.fail('192.0.2.1');
    expect(limiter.retryAfter('192.0.2.1')).toBe(0);
  });
});
