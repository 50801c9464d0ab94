import type { Command } from 'commander';

import { ledgerService, type LedgerService } from '../ledger/ledger.service';

import { print, withDb, withTemporal, defined, staffCommand, cliActor } from './shared';

function withLedger<T>(fn: (ops: LedgerService) => Promise<T>, needsTemporal = false): Promise<T> {
  return withDb((db, cfg) =>
    needsTemporal
      ? withTemporal((client) => fn(ledgerService({ db, billing: cfg.billing, temporal: { client, taskQueue: cfg.temporal.taskQueue } })))
      : fn(ledgerService({ db, billing: cfg.billing })),
  );
}

/** Credit: top-ups, refunds, adjustments, the balance and the ledger. */
export function registerLedger(program: Command): void {
  const topups = program.command('topups').description('prepaid credit');
  staffCommand(topups, 'create', 'record a top-up or grant; the reference makes it idempotent (runs the topUp workflow)')
    .requiredOption('--account <id>', 'account id')
    .requiredOption('--amount <amount>', 'amount in the account currency, as a decimal')
    .requiredOption('--reference <ref>', 'payment or document reference; the same reference credits once')
    .option('--grant', 'free credit (a grant) instead of a paid top-up')
    .action(async (o) =>
      print(
        await withLedger((ops) => ops.createTopUp({ accountId: o.account, amount: o.amount, reference: o.reference, kind: o.grant ? 'grant' : 'topup' }, cliActor()), true),
        !!o.json,
      ),
    );

  const refunds = program.command('refunds').description('money paid back to a customer');
  staffCommand(refunds, 'create', 'refund credit (debits the balance); needs a reason')
    .requiredOption('--account <id>', 'account id')
    .requiredOption('--amount <amount>', 'positive decimal')
    .requiredOption('--reference <ref>', 'refund reference; the same reference refunds once')
    .requiredOption('--reason <text>', 'why')
    .action(async (o) => print(await withLedger((ops) => ops.refund({ accountId: o.account, amount: o.amount, reference: o.reference, reason: o.reason }, cliActor())), !!o.json));

  const adjustments = program.command('adjustments').description('manual corrections');
  staffCommand(adjustments, 'create', 'post an adjustment of either sign; needs a reason')
    .requiredOption('--account <id>', 'account id')
    .requiredOption('--amount <amount>', 'signed decimal: positive credits, negative debits')
    .requiredOption('--reference <ref>', 'reference; the same reference posts once')
    .requiredOption('--reason <text>', 'why')
    .action(async (o) => print(await withLedger((ops) => ops.adjust({ accountId: o.account, amount: o.amount, reference: o.reference, reason: o.reason }, cliActor())), !!o.json));

  const ledger = program.command('ledger').description('ledger entries');
  staffCommand(ledger, 'reverse', 'reverse an entry (an entry is reversed at most once); needs a reason')
    .argument('<entry-id>', 'ledger entry id')
    .requiredOption('--reason <text>', 'why')
    .action(async (entryId: string, o) => print(await withLedger((ops) => ops.reverse({ entryId, reason: o.reason }, cliActor())), !!o.json));

  staffCommand(program, 'balance', 'balance, holds, spendable credit, recent entries and unsettled usage')
    .requiredOption('--account <id>', 'account id')
    .option('--limit <n>', 'entries per page', '20')
    .option('--before <entry-id>', 'show entries older than this one')
    .action(async (o) =>
      print(await withLedger((ops) => ops.balance(defined({ accountId: o.account, limit: o.limit, before: o.before }))), !!o.json, (r) =>
        [
          `balance: ${r.balance} ${r.currency} (${r.balanceRounded})`,
          `held: ${r.held}`,
          `spendable: ${r.spendable}`,
          `pending usage: ${r.pendingUsage.events} events, ${r.pendingUsage.cost}`,
          '',
          ...r.entries.map((e: any) => `${e.id}  ${e.createdAt}  ${e.kind.padEnd(10)} ${e.amount.padStart(16)}  -> ${e.balanceAfter}  ${e.reference}  ${e.actor}${e.reason ? `  (${e.reason})` : ''}`),
          ...(r.nextPage ? [`(more: --before ${r.nextPage.before})`] : []),
        ].join('\n'),
      ),
    );
}
