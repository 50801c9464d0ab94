import { describe, expect, it } from 'vitest';
import { keySettingsProblems } from '../../src/accounts/keySettings.rules';

const NOW = new Date('2027-03-01T12:00:00Z');
const YEAR = 366 * 86_400_000;

describe('key settings rules', () => {
  it('accepts no limit, a lifetime limit, a windowed limit, and an expiry ahead within the bound', () => {
    expect(keySettingsProblems({ spendLimit: null, limitWindow: null, expiresAt: null }, NOW, YEAR)).toEqual([]);
    expect(keySettingsProblems({ spendLimit: '5', limitWindow: null, expiresAt: null }, NOW, YEAR)).toEqual([]);
    expect(keySettingsProblems({ spendLimit: '5', limitWindow: 'weekly', expiresAt: new Date(NOW.getTime() + YEAR) }, NOW, YEAR)).toEqual([]);
  });

  it('refuses a window without a limit', () => {
    expect(keySettingsProblems({ spendLimit: null, limitWindow: 'daily', expiresAt: null }, NOW, YEAR)).toEqual([
      { field: 'limit_reset', message: expect.stringContaining('needs a limit') },
    ]);
  });

  it('refuses an expiry at or before now, and one past the bound', () => {
    for (const at of [NOW, new Date(NOW.getTime() - 1)]) {
      expect(keySettingsProblems({ spendLimit: null, limitWindow: null, expiresAt: at }, NOW, YEAR)).toEqual([{ field: 'expires_at', message: 'expires_at must be in the future' }]);
    }
    expect(keySettingsProblems({ spendLimit: null, limitWindow: null, expiresAt: new Date(NOW.getTime() + YEAR + 1) }, NOW, YEAR)).toEqual([
      { field: 'expires_at', message: 'expires_at must be at most 366 days ahead' },
    ]);
    expect(keySettingsProblems({ spendLimit: null, limitWindow: null, expiresAt: new Date(NOW.getTime() + 1) }, NOW, YEAR)).toEqual([]);
  });
});
