import type { Command } from 'commander';

import { systemClock } from '../clock';
import { ValidationError } from '../errors';
import fs from 'node:fs';
import { reconciliationService } from '../reconciliation/reconciliation.service';

import { print, withDb, withTemporal, defined, staffCommand, cliActor } from './shared';

const VERDICT_LABEL: Record<string, string> = { clean: 'clean', repaired: 'repaired (safe repairs made)', needs_attention: 'NEEDS ATTENTION' };

const reportHuman = (r: any) => {
  const c = r.counts;
  const head = [
    `report ${r.id}  ${r.scope} ${r.label}  (${r.trigger}, ${r.requestedBy})`,
    `status: ${r.status}  verdict: ${r.verdict ? VERDICT_LABEL[r.verdict] : '-'}`,
    `discrepancies: ${c.discrepancies}  repaired: ${c.repaired}  needs attention: ${c.needsAttention}  new: ${c.new}`,
    `checks: ${Object.entries(r.checks ?? {})
      .map(([k, v]: [string, any]) => `${k} ${v.found}`)
      .join(', ')}`,
  ];
  if (!r.discrepancies) return head.join('\n');
  const rows = r.discrepancies.map(
    (d: any) =>
      `  ${d.resolution === 'repaired' ? 'repaired       ' : 'NEEDS ATTENTION'}  ${d.kind.padEnd(30)} ${d.subject}${d.accountId ? `  account ${d.accountId}` : ''}` +
      (d.expected !== null || d.actual !== null ? `\n      expected ${d.expected ?? '-'} ${d.unit}, actual ${d.actual ?? '-'} ${d.unit}, difference ${d.difference ?? '-'}` : '') +
      (d.new ? '' : `  (reported before in ${d.firstReportId})`),
  );
  return [...head, '', ...(rows.length ? rows : ['  (no discrepancies)']), ...(r.nextPage ? [`(more: --after ${r.nextPage.after})`] : [])].join('\n');
};


const withReconciliation = <T>(fn: (svc: ReturnType<typeof reconciliationService>) => Promise<T>): Promise<T> =>
  withDb((db) => fn(reconciliationService({ db, clock: systemClock })));


/** Reconciliation: checks, reports and providers' usage statements. */
export function registerReconciliation(program: Command): void {
  staffCommand(program, 'reconcile', 'check payments, usage, ledger, balances, invoices and provider statements for a UTC day or a month; repairs the safe cases')
    .option('--day <YYYY-MM-DD>', 'a UTC day')
    .option('--period <YYYY-MM>', 'a calendar month, UTC')
    .option('--no-wait', 'start the run and print its report id without waiting')
    .action(async (o) =>
      print(
        await withDb((db, cfg) =>
          withTemporal(async (client) => {
            const svc = reconciliationService({ db, clock: systemClock, client, taskQueue: cfg.temporal.taskQueue });
            const started = await svc.start(defined({ day: o.day, period: o.period }), cliActor());
            if (!o.wait) return started;
            await svc.wait(started);
            return svc.get({ id: started.reportId });
          }),
        ),
        !!o.json,
        (r) => ('discrepancies' in r ? reportHuman(r) : `${r.started ? 'started' : 'already running'}: ${r.workflowId}, report ${r.reportId}`),
      ),
    );

  const reports = program.command('reconcile-reports').description('reconciliation reports');
  staffCommand(reports, 'list', 'list reports, newest first')
    .option('--day <YYYY-MM-DD>', 'reports of a day')
    .option('--period <YYYY-MM>', 'reports of a month')
    .option('--verdict <verdict>', 'clean | repaired | needs_attention')
    .option('--limit <n>', 'page size', '50')
    .option('--before <iso>', 'reports started before this time (next page)')
    .action(async (o) =>
      print(await withReconciliation((svc) => svc.list(defined({ day: o.day, period: o.period, verdict: o.verdict, limit: o.limit, before: o.before }))), !!o.json, (r) =>
        [
          ...r.items.map(
            (x: any) =>
              `${x.id}  ${x.startedAt}  ${x.scope.padEnd(6)} ${x.label.padEnd(10)}  ${(x.verdict ?? x.status).padEnd(15)}  found ${x.counts.discrepancies}, repaired ${x.counts.repaired}, attention ${x.counts.needsAttention}, new ${x.counts.new}`,
          ),
          ...(r.nextPage ? [`(more: --before ${r.nextPage.before})`] : []),
        ].join('\n') || '(no reports)',
      ),
    );
  staffCommand(reports, 'show', 'a report with its discrepancies')
    .argument('<id>', 'report id')
    .option('--needs-attention', 'only what needs attention')
    .option('--limit <n>', 'discrepancies per page', '200')
    .option('--after <id>', 'discrepancies after this one (next page)')
    .action(async (id: string, o) =>
      print(await withReconciliation((svc) => svc.get(defined({ id, resolution: o.needsAttention ? 'needs_attention' : undefined, limit: o.limit, after: o.after }))), !!o.json, reportHuman),
    );

  const statements = program.command('provider-statements').description("upstream providers' usage statements");
  staffCommand(statements, 'import', "import a provider's usage statement (CSV: day,model,input_tokens,cached_tokens,output_tokens,cost[,currency])")
    .requiredOption('--provider <name>', 'provider name, as in `mixroute providers`')
    .argument('<file>', 'CSV file')
    .action(async (file: string, o) => {
      let csv: string;
      try {
        csv = fs.readFileSync(file, 'utf8');
      } catch (err) {
        throw new ValidationError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
      print(await withReconciliation((svc) => svc.importProviderStatement({ provider: o.provider, csv }, cliActor())), !!o.json, (r) =>
        `imported ${r.rows} row(s) for ${r.provider}: ${r.days.length} day(s) ${r.days[0] ?? ''}${r.days.length > 1 ? `..${r.days.at(-1)}` : ''}`,
      );
    });
}
