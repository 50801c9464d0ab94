import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { buildInvoice, type LinePrice } from '../../src/invoicing/invoice.rules';
import { escapeHtml, pdfSafeText, renderInvoiceHtml, renderInvoicePdf, type InvoiceDocument } from '../../src/invoicing/render';

function hasPdftotext(): boolean {
  try {
    execFileSync('which', ['pdftotext'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const built = buildInvoice({
  currency: 'USD',
  usage: [
    { model: 'gpt-mini', priceId: 'p1', inputTokens: 1_234_567, cacheReadTokens: 2_000_000, cacheWriteTokens: 0, outputTokens: 100_000, late: false, usagePeriod: '2026-10' },
    { model: 'gpt-mini', priceId: 'p1', inputTokens: 50_000, cacheReadTokens: 0, cacheWriteTokens: 0, outputTokens: 0, late: true, usagePeriod: '2026-09' },
  ],
  prices: new Map<string, LinePrice>([['p1', { inputPerMtok: '0.15', cachedInputPerMtok: '0.075', outputPerMtok: '0.6' }]]),
  tax: { kind: 'domestic', rate: '0.19', country: 'DE', note: null },
  plan: 'postpaid',
});

function doc(overrides: Partial<InvoiceDocument> = {}): InvoiceDocument {
  return {
    number: 'INV-2026-000123',
    status: 'finalized',
    period: '2026-10',
    issuedAt: '2026-11-03T09:00:00.000Z',
    dueDate: '2026-11-17',
    issuer: { name: 'MixRoute GmbH', address: 'Musterstraße 1\n10115 Berlin', country: 'DE', vatId: 'DE123456789', email: 'billing@mixroute.dev' },
    customer: { name: 'Acme Ltd', country: 'DE', vatId: null, billingEmail: 'ap@acme.example', accountId: 'acc_42' },
    currency: built.currency,
    lines: built.lines,
    totals: built.totals,
    taxNote: built.taxNote,
    plan: 'postpaid',
    ...overrides,
  };
}

/** The text a viewer would show: inflate the content streams and decode the TJ strings (pdfkit writes WinAnsi hex). */
function pdfText(pdf: Buffer): string {
  const raw = pdf.toString('latin1');
  const out: string[] = [];
  for (const m of raw.matchAll(/stream\r?\n([\s\S]*?)\r?\nendstream/g)) {
    let content: string;
    try {
      content = zlib.inflateSync(Buffer.from(m[1]!, 'latin1')).toString('latin1');
    } catch {
      content = m[1]!;
    }
    for (const tj of content.matchAll(/\[((?:<[0-9a-fA-F]*>|\s|-?\d+(?:\.\d+)?)*)\]\s*TJ/g)) {
      out.push([...tj[1]!.matchAll(/<([0-9a-fA-F]*)>/g)].map((h) => Buffer.from(h[1]!, 'hex').toString('latin1')).join(''));
    }
  }
  return out.join('\n');
}

describe('renderInvoiceHtml', () => {
  it('is a complete page with the number, parties, dates, lines and totals', () => {
    const html = renderInvoiceHtml(doc());
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(html).toContain('</html>');
    expect(html).toContain('<style>'); // inline CSS, nothing external
    expect(html).not.toMatch(/<link|<script|src=/i);
    expect(html).toContain('INV-2026-000123');
    expect(html).toContain('MixRoute GmbH');
    expect(html).toContain('Musterstraße 1<br>10115 Berlin');
    expect(html).toContain('DE123456789');
    expect(html).toContain('Acme Ltd');
    expect(html).toContain('acc_42');
    expect(html).toContain('2026-10 (2026-10-01 to 2026-10-31)');
    expect(html).toContain('<td>2026-11-03</td>');
    expect(html).toContain('<td>2026-11-17</td>');
    // Lines: description, quantity, unit price per 1M tokens, amount.
    expect(html).toContain('<td>gpt-mini input tokens</td><td class="num">1,234,567</td><td class="num">0.15</td><td class="num">0.19</td>');
    expect(html).toContain('<td>gpt-mini cached input tokens</td><td class="num">2,000,000</td><td class="num">0.075</td><td class="num">0.15</td>');
    expect(html).toContain('<td>gpt-mini output tokens</td><td class="num">100,000</td><td class="num">0.60</td><td class="num">0.06</td>');
    expect(html).toContain('<tr class="late"><td>Late usage from 2026-09: gpt-mini input tokens</td>');
    // Totals: 0.19 + 0.15 + 0.06 + 0.01 = 0.41; VAT 0.0779 -> 0.08; total 0.49.
    expect(built.totals).toMatchObject({ subtotal: '0.41', taxAmount: '0.08', total: '0.49', amountDue: '0.49' });
    expect(html).toContain('<th>Subtotal</th><td>0.41 USD</td>');
    expect(html).toContain('<th>VAT (19%)</th><td>0.08 USD</td>');
    expect(html).toContain('<tr class="strong"><th>Total</th><td>0.49 USD</td>');
    expect(html).toContain('<th>Credits applied</th><td>0.00 USD</td>');
    expect(html).toContain('<tr class="strong"><th>Amount due</th><td>0.49 USD</td>');
    expect(html).not.toContain('class="banner');
  });

  it('escapes every dynamic value', () => {
    const html = renderInvoiceHtml(
      doc({
        customer: { name: '<script>alert("x")</script>', country: 'FR', vatId: 'FR"1\'<', billingEmail: 'a&b@example.com', accountId: 'acc_<b>' },
        taxNote: 'Reverse charge <i>note</i>',
        notes: ['<img src=x onerror=alert(1)>'],
      }),
    );
    expect(html).not.toContain('<script>');
    expect(html).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;');
    expect(html).toContain('FR&quot;1&#39;&lt;');
    expect(html).toContain('a&amp;b@example.com');
    expect(html).toContain('acc_&lt;b&gt;');
    expect(html).toContain('Reverse charge &lt;i&gt;note&lt;/i&gt;');
    expect(html).not.toContain('<img');
    expect(escapeHtml(`<>&"'`)).toBe('&lt;&gt;&amp;&quot;&#39;');
  });

  it('shows DRAFT instead of a number, and a VOID banner with the credit note', () => {
    const draft = renderInvoiceHtml(doc({ number: null, status: 'draft', issuedAt: null, dueDate: null }));
    expect(draft).toContain('<th>Invoice number</th><td>DRAFT</td>');
    expect(draft).toContain('class="banner draft"');
    expect(draft).toContain('<th>Issue date</th><td>—</td>');

    const voided = renderInvoiceHtml(doc({ status: 'void', voidedBy: { creditNoteNumber: 'CN-2026-000007' } }));
    expect(voided).toContain('<div class="banner void" role="alert">VOID: cancelled by credit note CN-2026-000007</div>');
    expect(voided).toContain('INV-2026-000123');
  });

  it('explains prepaid credits', () => {
    const html = renderInvoiceHtml(doc({ plan: 'prepaid', totals: { ...built.totals, creditsApplied: '0.49', amountDue: '0.00' } }));
    expect(html).toContain('<th>Credits applied</th><td>-0.49 USD</td>');
    expect(html).toContain('<th>Amount due</th><td>0.00 USD</td>');
    expect(html).toContain('paid from prepaid credit');
  });
});

describe('renderInvoicePdf', () => {
  it('renders an A4 PDF in memory with the invoice on it', async () => {
    const pdf = await renderInvoicePdf(doc({ taxNote: 'Reverse charge: VAT to be accounted for by the recipient.' }));
    expect(pdf.subarray(0, 5).toString('latin1')).toBe('%PDF-');
    expect(pdf.length).toBeGreaterThan(2_000);
    expect(pdf.toString('latin1')).toContain('/MediaBox [0 0 595.28 841.89]'); // A4
    const text = pdfText(pdf);
    expect(text).toContain('INVOICE');
    expect(text).toContain('No. INV-2026-000123');
    expect(text).toContain('Acme Ltd');
    expect(text).toContain('Musterstraße 1');
    expect(text).toContain('gpt-mini input tokens');
    expect(text).toContain('1,234,567');
    expect(text).toContain('Late usage from 2026-09: gpt-mini input tokens');
    expect(text).toContain('VAT (19%)');
    expect(text).toContain('0.49 USD');
    expect(text).toContain('Reverse charge: VAT to be accounted for by the recipient.');
    expect(text).toContain('Page 1 of 1');
  });

  it('is deterministic: the same document gives the same bytes', async () => {
    const [a, b] = await Promise.all([renderInvoicePdf(doc()), renderInvoicePdf(doc())]);
    expect(a.equals(b)).toBe(true);
    const draft = await renderInvoicePdf(doc({ number: null, status: 'draft', issuedAt: null }));
    expect(draft.equals(await renderInvoicePdf(doc({ number: null, status: 'draft', issuedAt: null })))).toBe(true);
    expect(pdfText(draft)).toContain('DRAFT');
  });

  it('shows the VOID banner with the credit note number', async () => {
    const text = pdfText(await renderInvoicePdf(doc({ status: 'void', voidedBy: { creditNoteNumber: 'CN-2026-000007' } })));
    expect(text).toContain('VOID: cancelled by credit note CN-2026-000007');
  });

  it('breaks long invoices over pages', async () => {
    const many = Array.from({ length: 80 }, (_, i) => ({ ...built.lines[0]!, position: i + 1, description: `model-${i} input tokens` }));
    const text = pdfText(await renderInvoicePdf(doc({ lines: many })));
    expect(text).toContain('model-79 input tokens');
    expect(text).toMatch(/Page 2 of [23]/);
  });

  it('replaces what the standard fonts cannot show instead of printing garbage', async () => {
    expect(pdfSafeText('Zoë Straße € — Łódź 中文')).toBe('Zoë Straße € — Lódz ??');
    const text = pdfText(await renderInvoicePdf(doc({ customer: { ...doc().customer, name: 'Łódź 中文 Ltd' } })));
    expect(text).toContain('Lódz ?? Ltd');
  });

  it.skipIf(!hasPdftotext())('contains the invoice number as extracted by pdftotext', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'invoice-pdf-'));
    try {
      const file = path.join(dir, 'invoice.pdf');
      fs.writeFileSync(file, await renderInvoicePdf(doc()));
      const text = execFileSync('pdftotext', [file, '-'], { encoding: 'utf8' });
      expect(text).toContain('INV-2026-000123');
      expect(text).toContain('Amount due');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
