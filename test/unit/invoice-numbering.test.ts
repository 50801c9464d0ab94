import { describe, expect, it } from 'vitest';
import { creditNoteSeries, documentNumber, invoiceSeries } from '../../src/invoicing/numbering.rules';

describe('invoice numbering', () => {
  it('numbers invoices and credit notes in a series per UTC year of issue', () => {
    expect(invoiceSeries('MR', new Date('2026-12-31T23:59:59Z'))).toBe('MR-2026');
    expect(invoiceSeries('MR', new Date('2027-01-01T00:00:00Z'))).toBe('MR-2027');
    expect(creditNoteSeries(new Date('2026-06-01T00:00:00Z'))).toBe('CN-2026');
  });

  it('prints n with six digits at least', () => {
    expect(documentNumber('MR-2026', 1)).toBe('MR-2026-000001');
    expect(documentNumber('MR-2026', '42')).toBe('MR-2026-000042');
    expect(documentNumber('CN-2026', 1234567)).toBe('CN-2026-1234567');
  });
});
