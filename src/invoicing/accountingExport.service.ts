import { z } from 'zod';
import type { Clock } from '../clock';
import type { Db } from '../db/knex';
import { validate } from '../shared/validate';
import { applicationsPage, documentsPage, openExportSnapshot, writeOffsPage, type Cursor, type Page } from './accountingExport.data';
import {
  addToSummary,
  applicationRecord,
  documentRecord,
  emptySummary,
  exportFilename,
  exportHeader,
  exportLine,
  isCalendarDate,
  periodRange,
  rangeProblem,
  writeOffRecord,
  type ExportRange,
  type ExportRecord,
  type ExportSummary,
} from './accountingExport.rules';

/**
 * The accountants' export (docs/collections.md, "Export for the accountants"):
 * the invoices and credit notes issued, the payment applications paid and
 * the write-offs made in a range of days, as one CSV. It is produced page by
 * page from one consistent snapshot of the books, so a year of a large
 * platform never sits in memory: the admin API streams it, the CLI writes it
 * as it comes.
 */

const day = (what: string) =>
  z
    .string({ error: `${what} must be a date YYYY-MM-DD` })
    .trim()
    .max(10, `${what} must be a date YYYY-MM-DD`)
    .refine(isCalendarDate, `${what} must be a date YYYY-MM-DD`);

/** Either from and to (both included) or a billing period YYYY-MM. */
export const accountingExportInput = z
  .strictObject({
    from: day('from').optional(),
    to: day('to').optional(),
    period: z
      .string({ error: 'period must be a month YYYY-MM' })
      .trim()
      .max(7, 'period must be a month YYYY-MM')
      .refine((v) => periodRange(v) !== null, 'period must be a month YYYY-MM')
      .optional(),
  })
  .superRefine((v, ctx) => {
    const range = v.from !== undefined || v.to !== undefined;
    if (range === (v.period !== undefined)) {
      ctx.addIssue({ code: 'custom', path: ['period'], message: 'give either from and to (YYYY-MM-DD) or period (YYYY-MM)' });
      return;
    }
    if (!range) return;
    if (v.from === undefined || v.to === undefined) {
      ctx.addIssue({ code: 'custom', path: [v.from === undefined ? 'from' : 'to'], message: 'from and to go together' });
      return;
    }
    const problem = rangeProblem({ from: v.from, to: v.to });
    if (problem) ctx.addIssue({ code: 'custom', path: ['to'], message: problem });
  });

/** Rows per query. */
const PAGE = 1_000;

export interface AccountingExport {
  range: ExportRange;
  filename: string;
  /** The CSV, header first, one chunk per page. Iterate once; stopping early releases the snapshot. */
  chunks: AsyncIterable<string>;
  /** Control totals, complete once `chunks` is done. */
  summary: ExportSummary;
}

async function* pages<T>(next: (after: Cursor | null) => Promise<Page<T>>): AsyncGenerator<T[]> {
  let after: Cursor | null = null;
  do {
    const page: Page<T> = await next(after);
    if (page.rows.length) yield page.rows;
    after = page.next;
  } while (after);
}

/** `pageSize`: rows per query (tests page by one or two rows). */
export function accountingExportService({ db, clock, pageSize = PAGE }: { db: Db; clock: Clock; pageSize?: number }) {
  return {
    /**
     * Validates the request (from/to or period; at most 366 days) at once,
     * so a bad one fails before anything is sent, and returns the export to
     * stream. Sections in this order, each by date: invoices, credit notes,
     * payment applications, write-offs.
     */
    async csv(raw: unknown): Promise<AccountingExport> {
      const input = validate(accountingExportInput, raw ?? {});
      const range: ExportRange = input.period ? periodRange(input.period)! : { from: input.from!, to: input.to! };
      const summary = emptySummary();
      // The payment status on the last day, or today for a range that has not ended yet (what comes later is not known).
      const today = clock.now().toISOString().slice(0, 10);
      const statusOn = range.to < today ? range.to : today;
      async function* chunks(): AsyncGenerator<string> {
        yield exportHeader();
        const trx = await openExportSnapshot(db);
        try {
          const emit = (records: ExportRecord[]) => {
            for (const r of records) addToSummary(summary, r);
            return records.map(exportLine).join('');
          };
          for (const kind of ['invoice', 'credit_note'] as const) {
            for await (const rows of pages((after) => documentsPage(trx, kind, range, after, pageSize))) yield emit(rows.map((d) => documentRecord(d, statusOn)));
          }
          for await (const rows of pages((after) => applicationsPage(trx, range, after, pageSize))) yield emit(rows.map(applicationRecord));
          for await (const rows of pages((after) => writeOffsPage(trx, range, after, pageSize))) yield emit(rows.map(writeOffRecord));
        } finally {
          await trx.rollback().catch(() => undefined);
        }
      }
      return { range, filename: exportFilename(range), chunks: chunks(), summary };
    },
  };
}

export type AccountingExportService = ReturnType<typeof accountingExportService>;
