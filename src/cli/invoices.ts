import type { Command } from 'commander';
import type { Client } from '@temporalio/client';
import type { Config } from '../config';
import { connectTemporal } from '../temporal/client';

import { systemClock } from '../clock';
import fs from 'node:fs';
import path from 'node:path';
import { invoiceRuns } from '../invoicing/invoiceRuns.service';
import { invoicingService, type InvoicingService } from '../invoicing/invoicing.service';
import { renderInvoiceHtml, renderInvoicePdf } from '../invoicing/render';
import { agingCsv, AGING_BUCKETS, type AgingReport } from '../invoicing/paymentStatus.rules';
import { dunningOperations, dunningService, signalDunningResumed, type DunningService, type DunningTimelineStep } from '../invoicing/dunning.service';
import { RECORD_TYPES, type ExportSummary } from '../invoicing/accountingExport.rules';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

import { UsageError, print, withDb, withTemporal, defined, staffCommand, cliActor } from './shared';

const runHuman = (r: any) => {
  const s = r.state;
  const head = `${r.workflowId} (${r.started ? 'started' : 'existing'})`;
  if (!s) return `${head}\nstatus: waiting for a worker`;
  const totals = Object.entries(s.totals as Record<string, string>).map(([c, v]) => `${v} ${c}`).join(', ') || '0';
  return [
    head,
    `status: ${s.status}${s.dryRun ? ' (dry run)' : ''}`,
    `accounts: ${s.total}${s.listingDone ? '' : '+'}  done: ${s.done}  failed: ${s.failed}  skipped: ${s.skipped}  invoiced: ${s.invoiced}  existing: ${s.existing}`,
    `totals: ${totals}`,
    ...s.failures.map((f: { accountId: string; reason: string }) => `  failed ${f.accountId}: ${f.reason}`),
  ].join('\n');
};

const agingHuman = (r: AgingReport) => {
  const cols = ['current', '1-30', '31-60', '61-90', '>90', 'total'];
  const row = (name: string, a: AgingReport['totals'][number] | AgingReport['accounts'][number]) =>
    [name.padEnd(38).slice(0, 38), a.currency, ...[...AGING_BUCKETS, 'total' as const].map((b) => a[b].padStart(12))].join('  ');
  return [
    `receivables aging as of ${r.asOf}`,
    ['account'.padEnd(38), 'cur', ...cols.map((c) => c.padStart(12))].join('  '),
    ...r.accounts.map((a) => row(`${a.accountName} (${a.accountId.slice(0, 8)})`, a)),
    ...r.totals.map((t) => row('TOTAL', t)),
  ].join('\n');
};

const exportHuman = (r: { file: string; from: string; to: string } & ExportSummary) =>
  [
    `wrote ${r.file} (${r.from} to ${r.to})`,
    ...RECORD_TYPES.map((t) => `  ${t.padEnd(20)} ${String(r[t].records).padStart(8)}  ${Object.entries(r[t].amounts).map(([c, v]) => `${v} ${c}`).join(', ')}`),
  ].join('\n');

// `invoices dunning` takes --json itself (the timeline), so after a subcommand commander hands it to the parent.
const jsonOf = (o: { json?: boolean }, cmd: Command) => !!(o.json || cmd.parent?.opts().json);

const withDunning = <T>(fn: (d: DunningService) => Promise<T>): Promise<T> => withDb((db, cfg) => fn(dunningService({ db, clock: systemClock, config: cfg })));

const dunningHuman = (t: { invoiceId: string; number: string | null; status: string | null; paused: boolean; steps: DunningTimelineStep[] }) =>
  [
    `invoice ${t.number ?? t.invoiceId}: ${t.status ?? 'not collected'}${t.paused ? ' (dunning paused for the account)' : ''}`,
    ...(t.steps.length === 0 ? ['(no dunning)'] : t.steps.map((s) => `  ${s.dueAt}  ${s.name.padEnd(16)} ${s.doneAt ? `${s.outcome} at ${s.doneAt}` : 'to come'}`)),
  ].join('\n');

const withInvoicing = <T>(fn: (invoicing: InvoicingService) => Promise<T>): Promise<T> =>
  withDb((db, cfg) => fn(invoicingService({ db, clock: systemClock, config: cfg })));

/**
 * withInvoicing with a Temporal client when Temporal answers (within 3 s): a
 * payment, write-off or void then tells the invoice's dunning workflow at once.
 * Without Temporal the change is made all the same; the workflow reads the
 * invoice's status before its next step (docs/collections.md).
 */
const withInvoicingTelling = <T>(fn: (invoicing: InvoicingService) => Promise<T>): Promise<T> =>
  withDb(async (db, cfg) => {
    const connected = await connectTemporal(cfg, 3_000).catch(() => undefined);
    const connection = connected?.connection;
    try {
      const temporal = connected ? { client: connected.client, taskQueue: cfg.temporal.taskQueue } : undefined;
      return await fn(invoicingService({ db, clock: systemClock, config: cfg, temporal }));
    } finally {
      await connection?.close();
    }
  });

// Runs need Temporal only: the CLI builds the service's runs part alone, without a database connection.
const runsOf = (client: Client, cfg: Config) => invoiceRuns({ client, taskQueue: cfg.temporal.taskQueue, config: cfg, clock: systemClock });

/** Invoice runs, invoices and credit notes, VAT rates. */
export function registerInvoices(program: Command): void {
  const invoiceRun = program.command('invoice-run').description('invoice a billing period');
  staffCommand(invoiceRun, 'start', 'start the invoice run of a period (or show the one that exists)')
    .requiredOption('--period <YYYY-MM>', 'calendar month, UTC')
    .option('--account <id...>', 'only these accounts')
    .option('--dry-run', 'compute every invoice and report totals without writing')
    .option('--force', 'start before the period end plus the grace window')
    .option('--rerun', 'run a finished period again (after fixing failed accounts)')
    .option('--wait', 'wait until the run finishes and print its final status')
    .action(async (o) =>
      print(
        await withTemporal(async (client, cfg) => {
          const runs = runsOf(client, cfg);
          const started = await runs.start(defined({ period: o.period, accountIds: o.account, dryRun: !!o.dryRun, force: !!o.force, rerun: !!o.rerun }));
          if (!o.wait) return started;
          const state = await client.workflow.getHandle(started.workflowId).result();
          return { ...started, state };
        }),
        !!o.json,
        runHuman,
      ),
    );
  staffCommand(invoiceRun, 'status', "an invoice run's progress")
    .requiredOption('--period <YYYY-MM>', 'calendar month, UTC')
    .action(async (o) =>
      print(
        await withTemporal((client, cfg) => runsOf(client, cfg).status({ period: o.period })),
        !!o.json,
        runHuman,
      ),
    );

  const invoices = program.command('invoices').description('invoices and credit notes');
  staffCommand(invoices, 'list', 'list invoices')
    .option('--period <YYYY-MM>', 'billing period')
    .option('--account <id>', 'account id')
    .option('--limit <n>', 'page size', '100')
    .action(async (o) => print(await withInvoicing((s) => s.invoices.list(defined({ period: o.period, accountId: o.account, limit: o.limit }))), !!o.json));
  staffCommand(invoices, 'show', 'an invoice with its lines')
    .argument('<id>', 'invoice id')
    .action(async (id: string, o) => print(await withInvoicing((s) => s.invoices.get(id)), !!o.json));
  staffCommand(invoices, 'download', 'write an invoice as PDF or HTML')
    .argument('<id>', 'invoice id')
    .option('--format <pdf|html>', 'pdf or html', 'pdf')
    .requiredOption('--out <file>', 'where to write it')
    .action(async (id: string, o) => {
      if (o.format !== 'pdf' && o.format !== 'html') throw new UsageError('--format must be pdf or html');
      const written = await withInvoicing(async (s) => {
        const doc = await s.invoices.document(id);
        const body = o.format === 'pdf' ? await renderInvoicePdf(doc) : renderInvoiceHtml(doc);
        fs.writeFileSync(o.out, body);
        return { id, format: o.format, file: path.resolve(o.out), bytes: Buffer.byteLength(body) };
      });
      print(written, !!o.json);
    });
  staffCommand(invoices, 'void', 'void a finalized invoice with a credit note; needs a reason')
    .argument('<id>', 'invoice id')
    .requiredOption('--reason <text>', 'why')
    .action(async (id: string, o) => print(await withInvoicingTelling((s) => s.invoices.void({ id, reason: o.reason }, cliActor())), !!o.json));

  staffCommand(invoices, 'payments', "a postpaid invoice's payment status, applied payments and write-off")
    .argument('<id>', 'invoice id')
    .action(async (id: string, o) => print(await withInvoicing((s) => s.payments.get(id)), !!o.json));
  staffCommand(invoices, 'record-payment', 'record a bank transfer against a postpaid invoice, once per reference (the part above what is due is credited to the account)')
    .argument('<id>', 'invoice id')
    .requiredOption('--amount <decimal>', 'the amount received, e.g. 120.50')
    .requiredOption('--date <YYYY-MM-DD>', 'the day the transfer arrived')
    .requiredOption('--reference <text>', "the bank's reference of the transfer")
    .action(async (id: string, o) =>
      print(await withInvoicingTelling((s) => s.payments.recordPayment(id, { amount: o.amount, paidOn: o.date, reference: o.reference }, cliActor())), !!o.json),
    );
  staffCommand(invoices, 'write-off', 'write off what is outstanding on a postpaid invoice; needs a reason')
    .argument('<id>', 'invoice id')
    .requiredOption('--reason <text>', 'why it will not be collected')
    .action(async (id: string, o) => print(await withInvoicingTelling((s) => s.payments.writeOff(id, { reason: o.reason }, cliActor())), !!o.json));
  staffCommand(invoices, 'aging', 'receivables aging: outstanding postpaid invoices by days overdue, in total and per account')
    .option('--as-of <YYYY-MM-DD>', 'the day to age on (default today, UTC)')
    .option('--account <id>', 'one account only')
    .option('--csv', 'print CSV')
    .action(async (o) => {
      const report = await withInvoicing((s) => s.payments.aging(defined({ asOf: o.asOf, accountId: o.account })));
      if (o.csv) process.stdout.write(agingCsv(report));
      else print(report, !!o.json, agingHuman);
    });
  staffCommand(invoices, 'export', "the accountants' CSV: invoices and credit notes issued, payment applications paid and write-offs made from --from to --to (both included, at most 366 days) or in --period")
    .option('--from <YYYY-MM-DD>', 'first day (UTC)')
    .option('--to <YYYY-MM-DD>', 'last day (UTC), included')
    .option('--period <YYYY-MM>', 'a whole billing period instead of --from/--to')
    .option('--output <file>', 'write the CSV to this file (and print the control totals) instead of stdout')
    .action(async (o) => {
      const summary = await withInvoicing(async (s) => {
        const exp = await s.accountingExport.csv(defined({ from: o.from, to: o.to, period: o.period }));
        if (!o.output) {
          await pipeline(Readable.from(exp.chunks), process.stdout, { end: false });
          return null;
        }
        // Written next to the target and renamed when complete: a failed export leaves no half file behind.
        const partial = `${o.output}.partial`;
        try {
          await pipeline(Readable.from(exp.chunks), fs.createWriteStream(partial, { mode: 0o600 }));
          fs.renameSync(partial, o.output);
        } catch (err) {
          fs.rmSync(partial, { force: true });
          throw err;
        }
        return { file: path.resolve(o.output), from: exp.range.from, to: exp.range.to, ...exp.summary };
      });
      if (summary) print(summary, !!o.json, exportHuman);
    });

  // Dunning (docs/collections.md, "Dunning"): an invoice's timeline, a backfill start, an account's pause and resume.
  const dunningCmd = staffCommand(invoices, 'dunning', "an invoice's dunning timeline: the steps sent and the steps to come (subcommands: start, pause, resume)")
    .argument('[invoiceId]', 'invoice id')
    .action(async (id: string | undefined, o) => {
      if (!id) throw new UsageError('give an invoice id, or one of: start <invoiceId>, pause --account ID --reason TEXT, resume --account ID');
      print(await withDunning((d) => d.timeline(id)), !!o.json, dunningHuman);
    });
  staffCommand(dunningCmd, 'start', 'start the dunning of an invoice finalized earlier (a backfill; nothing if it runs or ran already)')
    .argument('<invoiceId>', 'invoice id')
    .action(async (id: string, o, cmd: Command) =>
      print(await withDb((db, cfg) => withTemporal((client) => dunningOperations({ db, clock: systemClock, config: cfg, temporal: { client, taskQueue: cfg.temporal.taskQueue } }).start(id))), jsonOf(o, cmd)),
    );
  staffCommand(dunningCmd, 'pause', "pause an account's dunning: no reminder or suspension until resumed; needs a reason")
    .requiredOption('--account <id>', 'account id')
    .requiredOption('--reason <text>', 'why (3-500 characters)')
    .action(async (o, cmd: Command) => print(await withDunning((d) => d.pause({ accountId: o.account, reason: o.reason, actor: cliActor() })), jsonOf(o, cmd)));
  staffCommand(dunningCmd, 'resume', "resume an account's dunning; steps that came due while paused run now")
    .requiredOption('--account <id>', 'account id')
    .action(async (o, cmd: Command) => {
      const r = await withDunning((d) => d.resume({ accountId: o.account, actor: cliActor() }));
      // Waiting workflows look again at once; without Temporal they do after DUNNING_PAUSE_RECHECK_MS.
      const signalled = r.resumed ? await withTemporal((client) => signalDunningResumed(client, o.account, r.invoiceIds)).catch(() => null) : 0;
      print({ resumed: r.resumed, signalled }, jsonOf(o, cmd));
    });

  const taxRatesCmd = program.command('tax-rates').description('VAT rates by country');
  staffCommand(taxRatesCmd, 'set', 'set the rate of a country from a date')
    .requiredOption('--country <CC>', 'ISO 3166-1 alpha-2')
    .requiredOption('--rate <fraction>', 'decimal fraction, e.g. 0.19')
    .requiredOption('--from <YYYY-MM-DD>', 'first day in force')
    .option('--to <YYYY-MM-DD>', 'first day no longer in force')
    .action(async (o) =>
      print(await withInvoicing((s) => s.taxRates.set(defined({ country: o.country, rate: o.rate, effectiveFrom: o.from, effectiveTo: o.to }))), !!o.json),
    );
  staffCommand(taxRatesCmd, 'list', 'list tax rates')
    .option('--limit <n>', 'page size', '100')
    .option('--after <key>', 'the last COUNTRY:effectiveFrom of the previous page')
    .action(async (o) => print(await withInvoicing((s) => s.taxRates.list(defined({ limit: o.limit, after: o.after }))), !!o.json));
}
