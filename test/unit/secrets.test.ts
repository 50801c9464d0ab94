import { describe, expect, it } from 'vitest';
import { displayPrefix, hashesEqual, hashSecret, issueSecret, looksLike } from '../../src/auth/secrets';

describe('secrets', () => {
  it('issues distinct keys whose stored parts do not reveal the key', () => {
    const a = issueSecret('api_key');
    const b = issueSecret('api_key');
    expect(a.secret).not.toBe(b.secret);
    expect(a.secret.startsWith('mr-')).toBe(true);
    expect(a.hash).toBe(hashSecret(a.secret));
    expect(a.hash).not.toContain(a.secret.slice(3, 20));
    expect(a.displayPrefix).toBe(a.secret.slice(0, 11));
    expect(a.secret.length).toBeGreaterThan(40);
  });

  it('tells api keys and staff tokens apart', () => {
    const staff = issueSecret('staff_token');
    expect(looksLike(staff.secret, 'staff_token')).toBe(true);
    expect(looksLike(staff.secret, 'api_key')).toBe(false);
    expect(looksLike('mrs-short', 'staff_token')).toBe(false);
    expect(displayPrefix(staff.secret, 'staff_token')).toHaveLength(12);
  });

  it('compares hashes', () => {
    const h = hashSecret('x');
    expect(hashesEqual(h, hashSecret('x'))).toBe(true);
    expect(hashesEqual(h, hashSecret('y'))).toBe(false);
    expect(hashesEqual(h, 'ab')).toBe(false);
  });
});
