/**
 * The record of processing activities as an A4 PDF (issue 25, part 3): the
 * controller and the date, one section per processing activity with the
 * facts of GDPR article 30(1), then the recipients, the transfers to third
 * countries and where the security measures are described. Pure: built in
 * memory from ropa.rules' rows; the PDF's creation date is the record's date,
 * so identical facts give an identical file. Not for workflows (pdfkit).
 *
 * Like the invoice, it uses the standard Helvetica font, which shows
 * Windows-1252 only: other characters lose their accents or become "?" (`t`).
 */
import PDFDocument from 'pdfkit';
import { pdfSafeText } from '../shared/pdfText.rules';
import { writePageFooters } from '../shared/pdfFooter';
import { SECURITY_MEASURES, controllerContact, recipientLine, ropaRows, thirdCountryTransfers, transferText, type RopaFacts } from './ropa.rules';

/** Text the standard fonts can show (src/shared/pdfText.rules.ts). */
export const ropaPdfText = (value: string): string => pdfSafeText(value);
const t = ropaPdfText;

const MARGIN = 50;
const FONT = 'Helvetica';
const FONT_BOLD = 'Helvetica-Bold';
const GREY = '#555555';
const TITLE = 'Record of processing activities';

export function renderRopaPdf(facts: RopaFacts): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    try {
      const c = facts.controller;
      const pdf = new PDFDocument({
        size: 'A4',
        margin: MARGIN,
        bufferPages: true,
        info: {
          Title: t(`${TITLE} (GDPR article 30)`),
          Author: t(c.name),
          Subject: t(`${TITLE} of ${c.name}, ${facts.generatedOn}`),
          Creator: 'MixRoute',
          Producer: 'MixRoute (PDFKit)',
          CreationDate: new Date(`${facts.generatedOn}T00:00:00Z`),
        },
      });
      const chunks: Buffer[] = [];
      pdf.on('data', (chunk: Buffer) => chunks.push(chunk));
      pdf.on('end', () => resolve(Buffer.concat(chunks)));
      pdf.on('error', reject);

      const left = MARGIN;
      const width = pdf.page.width - 2 * MARGIN;
      const labelW = 150;
      const bottom = () => pdf.page.height - MARGIN - 20;
      // pdfkit breaks long text across pages itself; a heading starts a new page when too little room is left under it.
      const room = (h: number) => {
        if (pdf.y + h > bottom()) pdf.addPage();
      };
      const heading = (text: string, size = 13) => {
        room(60);
        pdf.moveDown(0.6).font(FONT_BOLD).fontSize(size).fillColor('black').text(t(text), left, pdf.y, { width });
        pdf.moveDown(0.3);
      };
      const paragraph = (text: string, color = 'black') => {
        pdf.font(FONT).fontSize(9.5).fillColor(color).text(t(text), left, pdf.y, { width });
        pdf.moveDown(0.3);
      };
      const field = (label: string, values: readonly string[]) => {
        const shown = values.length ? values : ['none'];
        pdf.font(FONT).fontSize(9.5);
        const h = pdf.heightOfString(t(shown.join('\n')), { width: width - labelW });
        room(Math.min(h, 120));
        const y = pdf.y;
        pdf.fillColor(GREY).text(t(label), left, y, { width: labelW - 8 });
        const labelEnd = pdf.y;
        pdf.fillColor('black').text(t(shown.join('\n')), left + labelW, y, { width: width - labelW });
        pdf.x = left;
        pdf.y = Math.max(pdf.y, labelEnd) + 3;
      };

      pdf.font(FONT_BOLD).fontSize(20).fillColor('black').text(TITLE, left, MARGIN, { width });
      pdf.font(FONT).fontSize(10).fillColor(GREY).text(t(`GDPR article 30(1). Generated from the processing register and the retention policies on ${facts.generatedOn}.`), { width });
      pdf.moveDown(0.8);

      heading('Controller');
      field('Name', [c.name]);
      field('Contact', [controllerContact(c)]);
      field('VAT ID', [c.vatId]);

      const rows = ropaRows(facts);
      heading(`Processing activities (${rows.length})`);
      if (rows.length === 0) paragraph('The register holds no processing activity.');
      for (const r of rows) {
        heading(r.purpose, 11);
        field('Activity', [r.activity]);
        field('Purpose', [r.purpose]);
        field('Legal basis', [r.legalBasis]);
        field('Data subjects', r.dataSubjectCategories);
        field('Personal data', r.dataCategories);
        field('Recipients (categories)', r.recipientCategories);
        field('Third-country transfers', r.transfers.map(transferText));
        field('Time limit for erasure', [r.erasureTimeLimit]);
        field('Systems', r.systems);
      }

      heading(`Recipients (${facts.recipients.length})`);
      paragraph('The register does not link recipients to activities: every activity above names every recipient listed here.', GREY);
      if (facts.recipients.length === 0) paragraph('The register holds no recipient.');
      for (const r of facts.recipients) paragraph(`${recipientLine(r)}${r.agreementRef ? `; agreement ${r.agreementRef}` : ''}`);

      heading('Transfers to third countries');
      const transfers = thirdCountryTransfers(facts.recipients);
      if (transfers.length === 0) paragraph('None: every recipient processes within the EEA.');
      for (const tr of transfers) paragraph(transferText(tr));

      heading('Security measures');
      paragraph(SECURITY_MEASURES);

      writePageFooters(pdf, (page, pages) => `${TITLE} · ${c.name} · ${facts.generatedOn} · Page ${page} of ${pages}`, { margin: MARGIN, font: FONT, color: GREY });
      pdf.end();
    } catch (err) {
      reject(err instanceof Error ? err : new Error(String(err)));
    }
  });
}
