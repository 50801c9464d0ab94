import { describe, expect, it } from 'vitest';
import { assertResolutionsAllowed, CHECKS, DISCREPANCY_KINDS, fingerprint, previousUtcDay, reconcileWindow, verdict, WindowError, type Discrepancy } from '../../src/reconciliation/reconciliation.rules';
import { parseStatement, StatementError } from '../../src/reconciliation/providerStatement.rules';

describe('reconciliation windows', () => {
  it('turns a UTC day and a month into [start, end)', () => {
    expect(reconcileWindow('day', '2026-11-25')).toEqual({ scope: 'day', label: '2026-11-25', start: '2026-11-25T00:00:00.000Z', end: '2026-11-26T00:00:00.000Z' });
    expect(reconcileWindow('day', '2028-02-29').end).toBe('2028-03-01T00:00:00.000Z');
    expect(reconcileWindow('period', '2026-12')).toEqual({ scope: 'period', label: '2026-12', start: '2026-12-01T00:00:00.000Z', end: '2027-01-01T00:00:00.000Z' });
  });

  it('refuses what is not a calendar day or month', () => {
    for (const day of ['2026-02-30', '2027-02-29', '2026-11-25T00:00', '26-11-25', '']) expect(() => reconcileWindow('day', day), day).toThrow(WindowError);
    for (const period of ['2026-13', '2026-1', '2026-11-01']) expect(() => reconcileWindow('period', period), period).toThrow(WindowError);
  });

  it('the daily run covers the UTC day before it starts, whatever the hour', () => {
    expect(previousUtcDay(new Date('2026-11-26T02:30:00Z'))).toBe('2026-11-25');
    expect(previousUtcDay(new Date('2026-03-01T00:00:00Z'))).toBe('2026-02-28');
    expect(previousUtcDay(new Date('2027-01-01T23:59:59Z'))).toBe('2026-12-31');
  });
});

describe('discrepancies', () => {
  it('only a missing settlement and a missing deduction are safe to repair', () => {
    const safe = Object.entries(DISCREPANCY_KINDS)
      .filter(([, k]) => k.safe)
      .map(([name]) => name);
    expect(safe.sort()).toEqual(['unsettled_usage', 'usage_deduction_missing']);
    for (const k of Object.values(DISCREPANCY_KINDS)) expect(CHECKS).toContain(k.check);
  });

  it('a check may repair only the safe kinds it finds itself', () => {
    const d = (kind: Discrepancy['kind'], resolution: Discrepancy['resolution']): Discrepancy =>
      ({ kind, subject: 's', accountId: null, expected: null, actual: null, unit: 'USD', details: {}, resolution, repairRef: null });
    expect(() => assertResolutionsAllowed('usage', [d('unsettled_usage', 'repaired'), d('usage_hourly_mismatch', 'needs_attention')])).not.toThrow();
    expect(() => assertResolutionsAllowed('balances', [d('balance_mismatch', 'repaired')])).toThrow('discrepancy balance_mismatch cannot be repaired by the balances check');
    expect(() => assertResolutionsAllowed('payments', [d('unsettled_usage', 'needs_attention')])).toThrow('by the payments check');
  });

  it('the verdict is the worst resolution in the report', () => {
    expect(verdict({ repaired: 0, needsAttention: 0 })).toBe('clean');
    expect(verdict({ repaired: 3, needsAttention: 0 })).toBe('repaired');
    expect(verdict({ repaired: 3, needsAttention: 1 })).toBe('needs_attention');
  });

  it('the same problem has the same fingerprint in every report', () => {
    expect(fingerprint('balance_mismatch', 'a:1:2')).toBe(fingerprint('balance_mismatch', 'a:1:2'));
    expect(fingerprint('balance_mismatch', 'a:1:2')).not.toBe(fingerprint('balance_mismatch', 'a:1:3'));
  });
});

describe('provider statements', () => {
  it('parses the documented CSV, with an optional currency and a byte-order mark', () => {
    const rows = parseStatement('\uFEFFday,model,input_tokens,cached_tokens,output_tokens,cost,currency\n2026-11-25,gpt-4o-mini,1200,200,530,0.98,usd\n\n2026-11-25,o3,10,0,5,0,\n');
    expect(rows).toEqual([
      { day: '2026-11-25', model: 'gpt-4o-mini', inputTokens: 1200, cachedTokens: 200, outputTokens: 530, cost: '0.98', currency: 'USD' },
      { day: '2026-11-25', model: 'o3', inputTokens: 10, cachedTokens: 0, outputTokens: 5, cost: '0', currency: 'USD' },
    ]);
  });

  it('reports every bad line at once, by line number', () => {
    const text = 'day,model,input_tokens,cached_tokens,output_tokens,cost\n2026-02-30,a,1,0,1,1\n2026-11-25,b,1.5,0,1,1\n2026-11-25,c,1,0,1,abc\n2026-11-25,m,1,0,1,1\n2026-11-25,m,1,0,1,1\n';
    try {
      parseStatement(text);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(StatementError);
      expect((err as StatementError).problems).toEqual([
        'line 2: day must be a date YYYY-MM-DD',
        'line 3: input_tokens must be a whole number of tokens',
        'line 4: cost must be a non-negative decimal',
        'line 6: 2026-11-25 m appears twice',
      ]);
    }
  });

  it('names missing columns and refuses an empty file', () => {
    expect(() => parseStatement('day,model,cost\n2026-11-25,m,1\n')).toThrow(/missing column\(s\): input_tokens, cached_tokens, output_tokens/);
    expect(() => parseStatement('')).toThrow(/no rows/);
    expect(() => parseStatement('day,model\n"unterminated,x\n')).toThrow(StatementError);
  });
});
