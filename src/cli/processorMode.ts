import type { Command } from 'commander';

import { systemClock } from '../clock';
import { processorModeService, type ProcessorModeService } from '../privacy/processorMode.service';

import { cliActor, defined, print, staffCommand, withDb } from './shared';

/**
 * Processor-mode requests (docs/privacy-requests.md, "Requests about a
 * customer's API traffic"): `mixroute privacy processor-requests ...` and
 * `mixroute accounts privacy-contact ...`. Registered after the accounts group.
 */
const withPm = <T>(fn: (svc: ProcessorModeService) => Promise<T>): Promise<T> => withDb((db, cfg) => fn(processorModeService({ db, clock: systemClock, config: cfg })));

const requestLine = (r: any) =>
  `${r.id}  ${r.reference}  ${r.type.padEnd(18)} ${r.outcome.padEnd(18)} ${r.forwardedTo ? `due ${r.dueAt}${r.closedAt ? '  closed' : r.overdue ? '  OVERDUE' : ''}` : r.needsStaff ? 'needs staff' : ''}`;

const requestHuman = (r: any) =>
  [
    `${r.id}  ${r.reference}  ${r.type}  ${r.outcome}`,
    `received ${r.receivedAt}  channel ${r.channel}  jurisdiction ${r.jurisdiction}  from ${r.subjectEmail}`,
    `named: ${r.namedCustomer ?? r.namedAccountId ?? '(nothing)'}  account: ${r.accountId ?? '(none)'}`,
    r.forwardedTo
      ? `forwarded ${r.forwardedAt} to ${r.forwardedTo}, due ${r.dueAt}${r.closedAt ? `\nclosed ${r.closedAt} by ${r.closedBy}: ${r.closeReason}` : r.overdue ? '  OVERDUE' : '  open'}`
      : 'not forwarded',
    '',
    'answer:',
    r.answer,
  ].join('\n');

const contactHuman = (c: any) =>
  c
    ? [
        `privacy contact: ${c.email} (set ${c.setAt} by ${c.setBy}: ${c.reason})`,
        'changes:',
        ...c.changes.map((h: any) => `  ${h.changedAt} ${h.emailBefore ?? '(none)'} -> ${h.emailAfter} by ${h.changedBy}: ${h.reason}`),
      ].join('\n')
    : 'privacy contact: none (requests naming this customer are not forwarded)';

export function registerProcessorMode(program: Command): void {
  const privacy = program.command('privacy').description('privacy requests that are not data-subject requests of users');
  const pr = privacy.command('processor-requests').description("requests from people who are not users, about a customer's API traffic (we are its processor)");
  staffCommand(pr, 'list', 'requests, newest first, with their outcome and forward')
    .option('--outcome <o>', 'forwarded | customer_not_found | no_contact | not_named')
    .option('--overdue', 'only open forwards past their deadline (oldest deadline first)')
    .option('--limit <n>', 'page size', '100')
    .action(async (o) =>
      print(await withPm((svc) => svc.list(defined({ outcome: o.outcome, overdue: o.overdue ? 'true' : undefined, limit: o.limit }))), !!o.json, (rows) => rows.map(requestLine).join('\n') || '(none)'),
    );
  staffCommand(pr, 'show', 'a request: its answer and its forward')
    .argument('<id>', 'request id')
    .action(async (id: string, o) => print(await withPm((svc) => svc.get(id)), !!o.json, requestHuman));
  staffCommand(pr, 'close', "close a request's forward: the customer answered, or staff handled it")
    .argument('<id>', 'request id')
    .requiredOption('--reason <text>', 'why (3-500 characters, one line; recorded with who and when)')
    .action(async (id: string, o) => print(await withPm((svc) => svc.closeForward(id, { reason: o.reason }, cliActor())), !!o.json, requestHuman));
  staffCommand(pr, 'send-queued', 'send the processor-mode emails a failed send left queued (the worker also does this on its webhook dispatcher rounds)')
    .action(async (o) => print({ sent: await withPm((svc) => svc.sendQueued()) }, !!o.json, (r) => `sent: ${r.sent}`));

  const accounts = program.commands.find((c) => c.name() === 'accounts') ?? program.command('accounts').description('customer accounts');
  const contact = accounts.command('privacy-contact').description("an account's privacy contact: where processor-mode requests naming the customer are forwarded");
  staffCommand(contact, 'show', 'the contact and its changes (who, why, before, after, when)')
    .argument('<account>', 'account id')
    .action(async (id: string, o) => print(await withPm((svc) => svc.getContact(id)), !!o.json, contactHuman));
  staffCommand(contact, 'set', 'set the contact on the customer\'s word')
    .argument('<account>', 'account id')
    .requiredOption('--email <email>', 'the address forwards go to')
    .requiredOption('--reason <text>', 'why (3-500 characters, one line; recorded with who and when)')
    .action(async (id: string, o) =>
      print(
        await withPm(async (svc) => {
          await svc.setContact(id, { email: o.email, reason: o.reason }, cliActor());
          return svc.getContact(id);
        }),
        !!o.json,
        contactHuman,
      ),
    );
}
