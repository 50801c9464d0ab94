/**
 * Renders an invoice as a self-contained HTML page or an A4 PDF. Pure: no I/O (the PDF
 * is built in memory), no clock (the PDF's creation date comes from the document).
 * Not for workflows: it imports pdfkit. Run it in an activity or an API handler.
 *
 * Both show the issuer and customer blocks, the invoice number (or DRAFT), period,
 * issue and due dates, the line table (description, quantity, unit price per 1M
 * tokens, amount), subtotal, VAT (rate and amount) with the tax note, total, credits
 * applied and amount due, and a VOID banner naming the credit note when voided.
 *
 * The PDF uses the standard Helvetica font (nothing embedded, so the output is small
 * and identical for identical input). It can show Windows-1252 (Latin-1) characters
 * only: others are transliterated where possible (accents dropped) or shown as "?".
 * The HTML shows every character.
 */
import PDFDocument from 'pdfkit';
import { billingPeriod, periodLastDay, type InvoiceLine, type InvoiceTotals } from './invoice.rules';
import { parseAmount, toAmountString } from '../shared/money.rules';
import { utcDate } from './tax.rules';
import { pdfSafeText } from '../shared/pdfText.rules';
import { writePageFooters } from '../shared/pdfFooter';

export { pdfSafeText };

export interface InvoiceDocument {
  number: string | null;
  status: 'draft' | 'finalized' | 'void';
  /** 'YYYY-MM'. */
  period: string;
  issuedAt: string | null;
  dueDate: string | null;
  issuer: { name: string; address: string; country: string; vatId: string; email: string };
  customer: { name: string; country: string | null; vatId: string | null; billingEmail: string | null; accountId: string };
  currency: string;
  lines: InvoiceLine[];
  totals: InvoiceTotals;
  taxNote: string | null;
  plan: 'prepaid' | 'postpaid';
  voidedBy?: { creditNoteNumber: string } | null;
  notes?: string[];
}

// ---------------------------------------------------------------------------------
// Formatting shared by both renderers (all deterministic: no locale, no clock).

/** "1234567" -> "1,234,567". */
export function formatQuantity(n: number): string {
  const s = String(Math.trunc(n));
  const neg = s.startsWith('-');
  const digits = neg ? s.slice(1) : s;
  return (neg ? '-' : '') + digits.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** A unit price at full precision, with at least the currency's two minor digits: "1.5" -> "1.50", "0.075" stays. */
export function formatUnitPrice(price: string): string {
  const [int, frac = ''] = price.split('.');
  return `${int}.${frac.padEnd(2, '0')}`;
}

/** A decimal fraction as a percentage: "0.19" -> "19%", "0.055" -> "5.5%". */
export function formatRate(rate: string): string {
  try {
    return `${toAmountString(parseAmount(rate).mul(100))}%`;
  } catch {
    return rate;
  }
}

function displayDate(value: string | null): string {
  if (value === null || value === undefined || value === '') return '—';
  try {
    return utcDate(value, 'date');
  } catch {
    return value;
  }
}

function periodRange(period: string): string {
  try {
    return `${billingPeriod(period).start.slice(0, 10)} to ${periodLastDay(period)}`;
  } catch {
    return '';
  }
}

function headline(doc: InvoiceDocument): string {
  return doc.number ?? 'DRAFT';
}

function banners(doc: InvoiceDocument): { kind: 'void' | 'draft'; text: string }[] {
  const out: { kind: 'void' | 'draft'; text: string }[] = [];
  if (doc.status === 'void') {
    out.push({
      kind: 'void',
      text: doc.voidedBy?.creditNoteNumber ? `VOID: cancelled by credit note ${doc.voidedBy.creditNoteNumber}` : 'VOID: this invoice has been cancelled',
    });
  } else if (doc.status === 'draft' || doc.number === null) {
    out.push({ kind: 'draft', text: 'DRAFT: not a valid invoice until it is finalized' });
  }
  return out;
}

function allNotes(doc: InvoiceDocument): string[] {
  const notes: string[] = [];
  if (doc.plan === 'prepaid') {
    notes.push('Usage in this period was paid from prepaid credit; the amount due is the part the credit did not cover.');
  }
  return notes.concat(doc.notes ?? []);
}

interface TotalRow {
  label: string;
  value: string;
  strong?: boolean;
}

function totalRows(doc: InvoiceDocument): TotalRow[] {
  const c = doc.currency;
  const t = doc.totals;
  return [
    { label: 'Subtotal', value: `${t.subtotal} ${c}` },
    { label: `VAT (${formatRate(t.taxRate)})`, value: `${t.taxAmount} ${c}` },
    { label: 'Total', value: `${t.total} ${c}`, strong: true },
    // Credits reduce what is owed: shown as a deduction unless zero.
    { label: 'Credits applied', value: `${/^0(\.0+)?$/.test(t.creditsApplied) ? '' : '-'}${t.creditsApplied} ${c}` },
    { label: 'Amount due', value: `${t.amountDue} ${c}`, strong: true },
  ];
}

// ---------------------------------------------------------------------------------
// HTML

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(value: unknown): string {
  return String(value ?? '').replace(/[&<>"']/g, (ch) => HTML_ESCAPES[ch]!);
}

/** Escapes, and keeps the line breaks of multi-line values (addresses). */
function escapeMultiline(value: string): string {
  return escapeHtml(value).replace(/\r?\n/g, '<br>');
}

const CSS = `
  * { box-sizing: border-box; }
  body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #1a1a1a; margin: 0; padding: 32px; background: #f4f4f4; }
  .page { max-width: 840px; margin: 0 auto; background: #fff; padding: 40px; border: 1px solid #ddd; }
  h1 { font-size: 28px; margin: 0; letter-spacing: 1px; }
  .number { font-size: 16px; color: #444; margin-top: 4px; }
  .banner { padding: 12px 16px; margin: 16px 0; font-weight: bold; font-size: 18px; border-radius: 4px; }
  .banner.void { background: #fde8e8; color: #b00020; border: 2px solid #b00020; }
  .banner.draft { background: #f0f0f0; color: #555; border: 2px dashed #888; }
  .parties { display: flex; justify-content: space-between; gap: 32px; margin: 24px 0; }
  .party { flex: 1; font-size: 14px; line-height: 1.5; }
  .party h2 { font-size: 12px; text-transform: uppercase; color: #777; margin: 0 0 6px; }
  .party .name { font-weight: bold; font-size: 15px; }
  table.meta { border-collapse: collapse; font-size: 14px; margin-bottom: 24px; }
  table.meta th { text-align: left; color: #777; font-weight: normal; padding: 2px 16px 2px 0; }
  table.meta td { padding: 2px 0; }
  table.lines { width: 100%; border-collapse: collapse; font-size: 14px; }
  table.lines th { text-align: left; border-bottom: 2px solid #333; padding: 6px 8px; font-size: 12px; text-transform: uppercase; color: #555; }
  table.lines td { border-bottom: 1px solid #e3e3e3; padding: 6px 8px; vertical-align: top; }
  table.lines .num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
  table.lines tr.late td { background: #fffbea; }
  table.lines tr.empty td { color: #777; font-style: italic; }
  table.totals { margin: 16px 0 0 auto; border-collapse: collapse; font-size: 14px; min-width: 320px; }
  table.totals th { text-align: left; font-weight: normal; padding: 4px 16px 4px 0; }
  table.totals td { text-align: right; padding: 4px 0; white-space: nowrap; font-variant-numeric: tabular-nums; }
  table.totals tr.strong th, table.totals tr.strong td { font-weight: bold; border-top: 1px solid #333; }
  .tax-note { margin-top: 16px; font-size: 13px; color: #333; }
  .notes { margin-top: 16px; font-size: 13px; color: #555; }
  .notes p { margin: 4px 0; }
`;

export function renderInvoiceHtml(doc: InvoiceDocument): string {
  const e = escapeHtml;
  const c = doc.currency;
  const range = periodRange(doc.period);
  const bannerHtml = banners(doc)
    .map((b) => `<div class="banner ${b.kind}" role="alert">${e(b.text)}</div>`)
    .join('\n    ');

  const lineRows =
    doc.lines.length === 0
      ? '<tr class="empty"><td colspan="4">No usage in this period.</td></tr>'
      : doc.lines
          .map(
            (l) =>
              `<tr${l.late ? ' class="late"' : ''}><td>${e(l.description)}</td><td class="num">${e(formatQuantity(l.quantity))}</td>` +
              `<td class="num">${e(formatUnitPrice(l.unitPricePerMtok))}</td><td class="num">${e(l.amount)}</td></tr>`,
          )
          .join('\n        ');

  const totals = totalRows(doc)
    .map((r) => `<tr${r.strong ? ' class="strong"' : ''}><th>${e(r.label)}</th><td>${e(r.value)}</td></tr>`)
    .join('\n        ');

  const customerLines = [
    `<div class="name">${e(doc.customer.name)}</div>`,
    `<div>Account ${e(doc.customer.accountId)}</div>`,
    doc.customer.country ? `<div>Country: ${e(doc.customer.country)}</div>` : '',
    doc.customer.vatId ? `<div>VAT ID: ${e(doc.customer.vatId)}</div>` : '',
    doc.customer.billingEmail ? `<div>${e(doc.customer.billingEmail)}</div>` : '',
  ]
    .filter(Boolean)
    .join('\n        ');

  const notes = allNotes(doc);

  return `<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Invoice ${e(headline(doc))} (${e(doc.issuer.name)})</title>
  <style>${CSS}</style>
</head>
<body>
  <div class="page">
    <h1>INVOICE</h1>
    <div class="number">${doc.number === null ? 'DRAFT' : `No. ${e(doc.number)}`}</div>
    ${bannerHtml}
    <div class="parties">
      <div class="party issuer">
        <h2>From</h2>
        <div class="name">${e(doc.issuer.name)}</div>
        <div>${escapeMultiline(doc.issuer.address)}</div>
        <div>Country: ${e(doc.issuer.country)}</div>
        <div>VAT ID: ${e(doc.issuer.vatId)}</div>
        <div>${e(doc.issuer.email)}</div>
      </div>
      <div class="party customer">
        <h2>Bill to</h2>
        ${customerLines}
      </div>
    </div>
    <table class="meta">
      <tr><th>Invoice number</th><td>${e(headline(doc))}</td></tr>
      <tr><th>Period</th><td>${e(doc.period)}${range ? ` (${e(range)})` : ''}</td></tr>
      <tr><th>Issue date</th><td>${e(displayDate(doc.issuedAt))}</td></tr>
      <tr><th>Due date</th><td>${e(displayDate(doc.dueDate))}</td></tr>
      <tr><th>Plan</th><td>${doc.plan === 'prepaid' ? 'Prepaid' : 'Postpaid'}</td></tr>
      <tr><th>Currency</th><td>${e(c)}</td></tr>
    </table>
    <table class="lines">
      <thead>
        <tr><th>Description</th><th class="num">Quantity (tokens)</th><th class="num">Unit price per 1M tokens (${e(c)})</th><th class="num">Amount (${e(c)})</th></tr>
      </thead>
      <tbody>
        ${lineRows}
      </tbody>
    </table>
    <table class="totals">
      <tbody>
        ${totals}
      </tbody>
    </table>
    ${doc.taxNote ? `<p class="tax-note">${e(doc.taxNote)}</p>` : ''}
    ${notes.length ? `<div class="notes">${notes.map((n) => `<p>${e(n)}</p>`).join('')}</div>` : ''}
  </div>
</body>
</html>
`;
}

// ---------------------------------------------------------------------------------
// PDF

function creationDate(doc: InvoiceDocument): Date {
  for (const candidate of [doc.issuedAt, (() => { try { return billingPeriod(doc.period).end; } catch { return null; } })()]) {
    if (!candidate) continue;
    const ms = Date.parse(candidate);
    if (Number.isFinite(ms)) return new Date(ms);
  }
  return new Date(Date.UTC(2000, 0, 1));
}

const A4_MARGIN = 50;
const FONT = 'Helvetica';
const FONT_BOLD = 'Helvetica-Bold';
const GREY = '#555555';

export function renderInvoicePdf(doc: InvoiceDocument): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    try {
      const t = pdfSafeText;
      const title = `Invoice ${headline(doc)}`;
      const pdf = new PDFDocument({
        size: 'A4',
        margin: A4_MARGIN,
        bufferPages: true,
        info: {
          Title: t(title),
          Author: t(doc.issuer.name),
          Subject: t(`Invoice for ${doc.period}`),
          Creator: 'MixRoute',
          Producer: 'MixRoute (PDFKit)',
          CreationDate: creationDate(doc),
        },
      });
      const chunks: Buffer[] = [];
      pdf.on('data', (chunk: Buffer) => chunks.push(chunk));
      pdf.on('end', () => resolve(Buffer.concat(chunks)));
      pdf.on('error', reject);

      const left = A4_MARGIN;
      const width = pdf.page.width - 2 * A4_MARGIN;
      const right = left + width;
      const bottom = () => pdf.page.height - A4_MARGIN - 20; // keep room for the footer

      // Title and number.
      pdf.font(FONT_BOLD).fontSize(24).fillColor('black').text('INVOICE', left, A4_MARGIN, { width: width / 2 });
      pdf.font(FONT_BOLD).fontSize(14).text(t(doc.number === null ? 'DRAFT' : `No. ${doc.number}`), left + width / 2, A4_MARGIN + 6, {
        width: width / 2,
        align: 'right',
      });
      let y = A4_MARGIN + 40;

      // VOID / DRAFT banner.
      for (const b of banners(doc)) {
        const color = b.kind === 'void' ? '#b00020' : '#666666';
        pdf.font(FONT_BOLD).fontSize(b.kind === 'void' ? 16 : 12);
        const h = pdf.heightOfString(t(b.text), { width: width - 20 }) + 16;
        pdf.save().lineWidth(2).rect(left, y, width, h).strokeColor(color);
        if (b.kind === 'draft') pdf.dash(4, { space: 3 });
        pdf.stroke().restore();
        pdf.fillColor(color).text(t(b.text), left + 10, y + 8, { width: width - 20, align: 'center' });
        pdf.fillColor('black');
        y += h + 12;
      }

      // Parties.
      const colW = width / 2 - 10;
      const party = (x: number, heading: string, name: string, rows: string[]): number => {
        let py = y;
        pdf.font(FONT_BOLD).fontSize(8).fillColor(GREY).text(heading.toUpperCase(), x, py, { width: colW });
        py = pdf.y + 2;
        pdf.font(FONT_BOLD).fontSize(11).fillColor('black').text(t(name), x, py, { width: colW });
        pdf.font(FONT).fontSize(9.5);
        for (const r of rows) pdf.text(t(r), x, pdf.y + 1, { width: colW });
        return pdf.y;
      };
      const issuerEnd = party(left, 'From', doc.issuer.name, [
        ...doc.issuer.address.split(/\r?\n/),
        `Country: ${doc.issuer.country}`,
        `VAT ID: ${doc.issuer.vatId}`,
        doc.issuer.email,
      ]);
      const customerEnd = party(left + width / 2 + 10, 'Bill to', doc.customer.name, [
        `Account ${doc.customer.accountId}`,
        ...(doc.customer.country ? [`Country: ${doc.customer.country}`] : []),
        ...(doc.customer.vatId ? [`VAT ID: ${doc.customer.vatId}`] : []),
        ...(doc.customer.billingEmail ? [doc.customer.billingEmail] : []),
      ]);
      y = Math.max(issuerEnd, customerEnd) + 16;

      // Invoice facts.
      const range = periodRange(doc.period);
      const facts: [string, string][] = [
        ['Invoice number', headline(doc)],
        ['Period', `${doc.period}${range ? ` (${range})` : ''}`],
        ['Issue date', displayDate(doc.issuedAt)],
        ['Due date', displayDate(doc.dueDate)],
        ['Plan', doc.plan === 'prepaid' ? 'Prepaid' : 'Postpaid'],
        ['Currency', doc.currency],
      ];
      pdf.fontSize(9.5);
      for (const [label, value] of facts) {
        pdf.font(FONT).fillColor(GREY).text(label, left, y, { width: 100 });
        pdf.font(FONT).fillColor('black').text(t(value), left + 100, y, { width: width - 100 });
        y = pdf.y + 2;
      }
      y += 14;

      // Line table.
      const cols = [
        { title: 'Description', width: width - 270, align: 'left' as const },
        { title: 'Quantity (tokens)', width: 80, align: 'right' as const },
        { title: `Unit price / 1M tokens (${doc.currency})`, width: 100, align: 'right' as const },
        { title: `Amount (${doc.currency})`, width: 90, align: 'right' as const },
      ];
      const pad = 4;
      const drawRow = (cells: string[], font: string, fill: string | null): void => {
        pdf.font(font).fontSize(9);
        const h = Math.max(...cells.map((cell, i) => pdf.heightOfString(t(cell), { width: cols[i]!.width - 2 * pad }))) + 2 * pad;
        if (y + h > bottom()) {
          pdf.addPage();
          y = A4_MARGIN;
          if (font !== FONT_BOLD) drawHeader();
          pdf.font(font).fontSize(9);
        }
        if (fill) pdf.save().rect(left, y, width, h).fill(fill).restore();
        let x = left;
        pdf.fillColor('black');
        cells.forEach((cell, i) => {
          pdf.text(t(cell), x + pad, y + pad, { width: cols[i]!.width - 2 * pad, align: cols[i]!.align });
          x += cols[i]!.width;
        });
        y += h;
        pdf.save().moveTo(left, y).lineTo(right, y).lineWidth(font === FONT_BOLD ? 1.2 : 0.4).strokeColor(font === FONT_BOLD ? '#333333' : '#cccccc').stroke().restore();
      };
      const drawHeader = (): void => drawRow(cols.map((c) => c.title), FONT_BOLD, null);
      drawHeader();
      if (doc.lines.length === 0) {
        drawRow(['No usage in this period.', '', '', ''], FONT, null);
      }
      for (const l of doc.lines) {
        drawRow([l.description, formatQuantity(l.quantity), formatUnitPrice(l.unitPricePerMtok), l.amount], FONT, l.late ? '#fffbea' : null);
      }
      y += 12;

      // Totals.
      const rows = totalRows(doc);
      const labelW = 130;
      const valueW = 110;
      const tx = right - labelW - valueW;
      if (y + rows.length * 16 > bottom()) {
        pdf.addPage();
        y = A4_MARGIN;
      }
      for (const r of rows) {
        if (r.strong) pdf.save().moveTo(tx, y).lineTo(right, y).lineWidth(0.8).strokeColor('#333333').stroke().restore();
        pdf.font(r.strong ? FONT_BOLD : FONT).fontSize(10).fillColor('black');
        pdf.text(t(r.label), tx, y + 3, { width: labelW });
        pdf.text(t(r.value), tx + labelW, y + 3, { width: valueW, align: 'right' });
        y += 16;
      }
      y += 10;

      // Tax note and notes.
      const paragraphs = [...(doc.taxNote ? [{ text: doc.taxNote, color: 'black' }] : []), ...allNotes(doc).map((n) => ({ text: n, color: GREY }))];
      for (const p of paragraphs) {
        pdf.font(FONT).fontSize(9);
        const h = pdf.heightOfString(t(p.text), { width });
        if (y + h > bottom()) {
          pdf.addPage();
          y = A4_MARGIN;
        }
        pdf.fillColor(p.color).text(t(p.text), left, y, { width });
        y = pdf.y + 6;
      }

      writePageFooters(pdf, (page, pages) => `${title} · ${doc.issuer.name} · Page ${page} of ${pages}`, { margin: A4_MARGIN, font: FONT, color: GREY });
      pdf.end();
    } catch (err) {
      reject(err instanceof Error ? err : new Error(String(err)));
    }
  });
}
