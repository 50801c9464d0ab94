import type { Command } from 'commander';

import { systemClock } from '../clock';
import { retentionService, type RetentionService } from '../retention/retention.service';

import { print, withDb, withTemporal, defined, staffCommand, cliActor } from './shared';

const withRetention = <T>(fn: (svc: RetentionService) => Promise<T>, needsTemporal = false): Promise<T> =>
  withDb((db, cfg) =>
    needsTemporal
      ? withTemporal((client) => fn(retentionService({ db, clock: systemClock, config: cfg, client, taskQueue: cfg.temporal.taskQueue })))
      : fn(retentionService({ db, clock: systemClock, config: cfg })),
  );
const runHumanRetention = (r: any) =>
  r.categories
    ? [
        `run ${r.id}  ${r.status}  started ${r.startedAt}${r.finishedAt ? `  finished ${r.finishedAt}` : ''}  (${r.requestedBy})`,
        ...r.categories.map(
          (c: any) =>
            `  ${c.category.padEnd(22)} cutoff ${c.cutoff.slice(0, 10)}  expired ${c.expiredRows}${c.expiredPartitions ? ` (${c.expiredPartitions} day partitions)` : ''}  kept: hold ${c.keptHold}, unbilled ${c.keptUnbilled}${c.keptOther ? `, other ${c.keptOther}` : ''}${c.note ? `  (${c.note})` : ''}`,
        ),
      ].join('\n')
    : `started ${r.workflowId} (run ${r.runId})`;


/** Metadata expiry (retention) and legal holds. */
export function registerRetention(program: Command): void {
  const retention = program.command('retention').description('metadata expiry: policies, runs');
  staffCommand(retention, 'run', 'expire data past its retention period now (waits and prints what was expired)')
    .option('--no-wait', 'start and print the run id')
    .action(async (o) => print(await withRetention((svc) => svc.run(cliActor(), { wait: o.wait }), true), !!o.json, runHumanRetention));
  staffCommand(retention, 'runs', 'expiry runs, newest first')
    .option('--limit <n>', 'how many', '20')
    .option('--before <id>', 'the last run id of the previous page')
    .action(async (o) => print(await withRetention((svc) => svc.listRuns(defined({ limit: o.limit, before: o.before }))), !!o.json, (rows) => rows.map(runHumanRetention).join('\n\n') || '(no runs)'));
  staffCommand(retention, 'show', 'one expiry run')
    .argument('<id>', 'run id')
    .action(async (id: string, o) => print(await withRetention((svc) => svc.getRun(id)), !!o.json, runHumanRetention));
  staffCommand(retention, 'policies', 'retention policies').action(async (o) =>
    print(await withRetention((svc) => svc.policies()), !!o.json, (rows) =>
      rows.map((p: any) => `${p.category.padEnd(22)} ${String(p.period).padStart(4)} ${p.unit.padEnd(20)} ${p.action.padEnd(13)} ${p.legalBasis}`).join('\n'),
    ),
  );
  staffCommand(retention, 'set', "change a category's period (admins; recorded with the reason)")
    .requiredOption('--category <c>', 'category')
    .requiredOption('--period <n>', 'days, or years after the end of the year for billing records')
    .requiredOption('--reason <text>', 'why')
    .action(async (o) => print(await withRetention((svc) => svc.setPolicy({ category: o.category, period: o.period, reason: o.reason }, cliActor())), !!o.json));

  const holds = program.command('legal-holds').description('legal holds: expiry skips the data of held accounts');
  staffCommand(holds, 'add', 'place an account under legal hold')
    .requiredOption('--account <id>', 'account id')
    .requiredOption('--reason <text>', 'why (case, authority request)')
    .action(async (o) => print(await withRetention((svc) => svc.addHold({ accountId: o.account, reason: o.reason }, cliActor())), !!o.json));
  staffCommand(holds, 'release', 'release a legal hold')
    .argument('<id>', 'hold id')
    .requiredOption('--reason <text>', 'why the hold ends')
    .action(async (id: string, o) => print(await withRetention((svc) => svc.releaseHold(id, { reason: o.reason }, cliActor())), !!o.json));
  staffCommand(holds, 'list', 'legal holds')
    .option('--active', 'only holds in force')
    .option('--limit <n>', 'page size', '100')
    .option('--before <id>', 'the last hold id of the previous page')
    .action(async (o) => print(await withRetention((svc) => svc.holds(defined({ active: o.active ? 'true' : undefined, limit: o.limit, before: o.before }))), !!o.json));
}
