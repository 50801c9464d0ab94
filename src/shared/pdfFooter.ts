import type PDFDocument from 'pdfkit';
import { pdfSafeText } from './pdfText.rules';

/**
 * Writes a centred footer line on every buffered page (the document must be
 * created with `bufferPages: true`), into the bottom margin: the margin is
 * lifted while writing so the line does not start a new page. `line` gets the
 * page's number and the page count. Shared by the invoice and the record of
 * processing activities, which use the same standard fonts and A4 margins.
 */
export function writePageFooters(pdf: InstanceType<typeof PDFDocument>, line: (page: number, pages: number) => string, opts: { margin: number; font: string; color: string }): void {
  const range = pdf.bufferedPageRange();
  const width = pdf.page.width - 2 * opts.margin;
  for (let i = range.start; i < range.start + range.count; i++) {
    pdf.switchToPage(i);
    const savedBottom = pdf.page.margins.bottom;
    pdf.page.margins.bottom = 0;
    pdf
      .font(opts.font)
      .fontSize(8)
      .fillColor(opts.color)
      .text(pdfSafeText(line(i - range.start + 1, range.count)), opts.margin, pdf.page.height - opts.margin + 10, { width, align: 'center', lineBreak: false });
    pdf.page.margins.bottom = savedBottom;
  }
}
