import { describe, expect, it } from 'vitest';
import { CONSOLE_ROLES, deviceOf, ipPrefix, mayUse, monthBounds, passwordProblem, signInInputOk } from '../../src/customerConsole/customerConsole.rules';

describe('customer console rules', () => {
  it('names a device coarsely from its User-Agent', () => {
    expect(deviceOf('Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0')).toBe('Firefox on Windows');
    expect(deviceOf('Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15')).toBe('Safari on macOS');
    expect(deviceOf('Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0')).toBe('Edge on Windows');
    expect(deviceOf('Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36')).toBe('Chrome on Android');
    expect(deviceOf('curl/8.5.0')).toBe('Curl');
    expect(deviceOf(null)).toBe('Unknown device');
    expect(deviceOf('<script>')).toBe('A browser');
  });

  it('shows an address only coarsely', () => {
    expect(ipPrefix('203.0.113.77')).toBe('203.0.113.x');
    expect(ipPrefix('::ffff:198.51.100.9')).toBe('198.51.100.x');
    expect(ipPrefix('2001:db8:1:2:3:4:5:6')).toBe('2001:db8:1:2:…');
    expect(ipPrefix('2001:db8::1')).toBe('2001:db8:0:0:…');
    expect(ipPrefix('not an address')).toBeNull();
    expect(ipPrefix(null)).toBeNull();
  });

  it('bounds sign-in input and new passwords', () => {
    expect(signInInputOk('a@example.com', 'x')).toBe(true);
    expect(signInInputOk('no-at-sign', 'x')).toBe(false);
    expect(signInInputOk(`${'a'.repeat(250)}@example.com`, 'x')).toBe(false);
    expect(signInInputOk('a@example.com', 'x'.repeat(1025))).toBe(false);
    expect(passwordProblem('short')).toMatch(/at least 12/);
    expect(passwordProblem('é'.repeat(40))).toMatch(/at most 72 bytes/);
    expect(passwordProblem('a long enough passphrase')).toBeNull();
  });

  it('finds the calendar months around a day, across a year end', () => {
    expect(monthBounds(new Date('2027-01-15T12:00:00Z'))).toEqual({
      lastMonth: new Date('2026-12-01T00:00:00Z'),
      thisMonth: new Date('2027-01-01T00:00:00Z'),
      nextMonth: new Date('2027-02-01T00:00:00Z'),
    });
  });
});

describe('console roles', () => {
  it('give developers keys and usage, billing members billing and usage, owners and admins everything, everyone the overview', () => {
    expect(mayUse('developer', 'keys')).toBe(true);
    expect(mayUse('developer', 'billing')).toBe(false);
    expect(mayUse('billing', 'keys')).toBe(false);
    expect(mayUse('billing', 'billing')).toBe(true);
    for (const area of ['overview', 'security', 'keys', 'usage', 'billing', 'alerts', 'privacy'] as const) {
      expect(mayUse('owner', area)).toBe(true);
      expect(mayUse('admin', area)).toBe(true);
    }
    for (const role of CONSOLE_ROLES) expect(mayUse(role, 'overview') && mayUse(role, 'security') && mayUse(role, 'privacy')).toBe(true);
  });
});
