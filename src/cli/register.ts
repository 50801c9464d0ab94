import type { Command } from 'commander';

import { systemClock } from '../clock';
import { registerService, type RegisterService, type SubprocessorChangeSummary } from '../register/register.service';
import { ropaService } from '../register/ropa.service';
import { startSubprocessorChange, subprocessorService, type SubprocessorService } from '../register/subprocessor.service';

import fs from 'node:fs';
import path from 'node:path';
import { cliActor, defined, print, staffCommand, UsageError, withDb, withTemporal } from './shared';

const withRegister = <T>(fn: (svc: RegisterService) => Promise<T>): Promise<T> => withDb((db) => fn(registerService({ db, clock: systemClock })));

/**
 * A recipient change that announces a sub-processor starts its notice
 * workflow. The register service records the change and its notices (the
 * recipient is held back from then on) with the configured notice period;
 * Temporal is reached only when there is a change to start, so register edits
 * work without it. Unreachable, the command says so and `register notices
 * resume` starts the workflow later.
 */
const withRecipients = (fn: (svc: RegisterService) => Promise<{ subprocessorChange?: SubprocessorChangeSummary }>) =>
  withDb(async (db, cfg) => {
    const noticePeriodMs = cfg.register.subprocessorNoticeS * 1000;
    const result = await fn(registerService({ db, clock: systemClock, subprocessors: { noticePeriodMs } }));
    const change = result.subprocessorChange;
    if (change && !change.workflowStarted) {
      try {
        const c = await subprocessorService({ db, clock: systemClock }).changes.get(change.id);
        await withTemporal((client) => startSubprocessorChange(client, cfg.temporal.taskQueue, { changeId: c.id, announcedAtMs: Date.parse(c.announcedAt), noticePeriodMs: Date.parse(c.effectiveAt) - Date.parse(c.announcedAt) }));
        change.workflowStarted = true;
      } catch (err) {
        process.stderr.write(`warning: the sub-processor notice workflow did not start (${(err as Error).message}); run \`mixroute register notices resume\`\n`);
      }
    }
    return result;
  });

const withSubprocessors = <T>(fn: (svc: SubprocessorService) => Promise<T>): Promise<T> => withDb((db) => fn(subprocessorService({ db, clock: systemClock })));

const changeLine = (c: any) =>
  `${c.id}  ${String(c.recipient).padEnd(24)} ${String(c.kind).padEnd(16)} ${(c.countries.join(',') || '-').padEnd(12)} effective ${c.effectiveAt}${c.endedAt ? `  ended ${c.endedAt}` : '  OPEN'}`;

/** A comma-separated flag as a list ("DE, US" -> ['DE', 'US']); an empty flag is an empty list. */
const csv = (v: string | undefined) => (v === undefined ? undefined : v.split(',').map((x) => x.trim()).filter((x) => x !== ''));
/** A flag that clears a field with "-" (null), so an update can remove a fact. */
const orNull = (v: string | undefined) => (v === undefined ? undefined : v === '-' ? null : v);

const activityLine = (a: any) => `${a.id}  ${a.key.padEnd(24)} ${a.legalBasis.padEnd(21)} ${a.purpose}`;
const recipientLine = (r: any) =>
  `${r.id}  ${r.name.padEnd(24)} ${r.kind.padEnd(17)} ${String(r.role ?? '-').padEnd(22)} ${(r.countries.join(',') || '-').padEnd(12)} ${r.transferMechanism ?? '-'}${r.sccDate ? ` (${r.sccDate})` : ''}${r.missing.length ? `  INCOMPLETE: ${r.missing.join(', ')}` : ''}`;

const activityFlags = (cmd: Command) =>
  cmd
    .option('--purpose <text>', 'the purpose (3-500 characters)')
    .option('--legal-basis <basis>', 'contract, legal_obligation, legitimate_interests, consent, vital_interests or public_task')
    .option('--subjects <list>', 'categories of data subjects, comma-separated')
    .option('--data <list>', 'categories of data, comma-separated')
    .option('--systems <list>', 'systems, comma-separated')
    .option('--retention <category>', 'the retention policy category that governs it ("-" for none)')
    .option('--recipient-kinds <list>', 'kinds of recipient it discloses data to, comma-separated (model_provider,hosting); "none" for none, "-" for not stated')
    .requiredOption('--reason <text>', 'why (3-500 characters; recorded in the change log)');
const recipientKinds = (v: string | undefined) => (v === undefined ? undefined : v === '-' ? null : v === 'none' ? [] : csv(v));
const activityInput = (o: any) =>
  defined({
    purpose: o.purpose,
    legalBasis: o.legalBasis,
    dataSubjectCategories: csv(o.subjects),
    dataCategories: csv(o.data),
    systems: csv(o.systems),
    retentionCategory: orNull(o.retention),
    recipientKinds: recipientKinds(o.recipientKinds),
    reason: o.reason,
  });

const recipientFlags = (cmd: Command) =>
  cmd
    .option('--role <role>', 'processor, sub_processor or independent_controller ("-" to clear)')
    .option('--countries <list>', 'countries of processing, ISO alpha-2, comma-separated (DE,US)')
    .option('--transfer <mechanism>', 'not_needed, adequacy_decision, standard_contractual_clauses, binding_corporate_rules or other_basis ("-" to clear)')
    .option('--scc-date <date>', 'the date of the standard contractual clauses (YYYY-MM-DD)')
    .option('--transfer-note <text>', 'a note on the transfer basis')
    .option('--agreement <ref>', 'the agreement on file (a reference, at most 200 characters)')
    .option('--agreement-signed <date>', 'when the agreement was signed (YYYY-MM-DD)')
    .requiredOption('--reason <text>', 'why (3-500 characters; recorded in the change log)');
const recipientFacts = (o: any) =>
  defined({
    role: orNull(o.role),
    countries: csv(o.countries),
    transferMechanism: orNull(o.transfer),
    sccDate: orNull(o.sccDate),
    transferNote: orNull(o.transferNote),
    agreementRef: orNull(o.agreement),
    agreementSignedOn: orNull(o.agreementSigned),
    reason: o.reason,
  });

/** The processing register: activities, recipients, completeness, the change log. */
export function registerRegister(program: Command): void {
  const register = program.command('register').description('the processing register: activities, recipients, completeness, changes');

  const activities = register.command('activities').description('processing activities');
  staffCommand(activities, 'list', 'processing activities').action(async (o) =>
    print(await withRegister((svc) => svc.activities.list()), !!o.json, (rows) => rows.map(activityLine).join('\n') || '(no activities)'),
  );
  activityFlags(staffCommand(activities, 'add', 'add a processing activity').requiredOption('--key <key>', 'a short key (lower case, digits, _)')).action(async (o) =>
    print(await withRegister((svc) => svc.activities.create({ key: o.key, ...activityInput(o) }, cliActor())), !!o.json),
  );
  activityFlags(staffCommand(activities, 'update', 'change a processing activity (only the flags given)').argument('<id>', 'activity id')).action(async (id: string, o) =>
    print(await withRegister((svc) => svc.activities.update(id, activityInput(o), cliActor())), !!o.json),
  );

  const recipients = register.command('recipients').description('recipients: model providers, payment processor, email service, hosting');
  staffCommand(recipients, 'list', 'recipients, with what each entry lacks').action(async (o) =>
    print(await withRegister((svc) => svc.recipients.list()), !!o.json, (rows) => rows.map(recipientLine).join('\n') || '(no recipients)'),
  );
  recipientFlags(
    staffCommand(recipients, 'add', 'add a recipient')
      .requiredOption('--kind <kind>', 'model_provider, payment_processor, email_service, hosting or other')
      .option('--provider <id-or-name>', 'kind model_provider: the provider')
      .option('--name <name>', 'other kinds: the name'),
  ).action(async (o) => print(await withRecipients((svc) => svc.recipients.create(defined({ kind: o.kind, provider: o.provider, name: o.name, ...recipientFacts(o) }), cliActor())), !!o.json));
  recipientFlags(staffCommand(recipients, 'update', 'change a recipient (only the flags given)').argument('<id>', 'recipient id').option('--name <name>', 'a new name (not for model providers)')).action(
    async (id: string, o) => print(await withRecipients((svc) => svc.recipients.update(id, defined({ name: o.name, ...recipientFacts(o) }), cliActor())), !!o.json),
  );

  const notices = register.command('notices').description('sub-processor changes and the notices of accounts with a data-processing agreement');
  staffCommand(notices, 'list', 'sub-processor changes, newest first')
    .option('--open', 'only changes whose notice period has not ended')
    .option('--limit <n>', 'how many', '50')
    .action(async (o) =>
      print(await withSubprocessors((svc) => svc.changes.list(defined({ limit: o.limit, open: o.open ? 'true' : undefined }))), !!o.json, (rows) => rows.map(changeLine).join('\n') || '(no sub-processor changes)'),
    );
  staffCommand(notices, 'show', 'one change with its notice counts and its notices')
    .argument('<changeId>', 'change id')
    .option('--limit <n>', 'notices shown', '100')
    .option('--after <accountId>', 'the last account id of the previous page of notices')
    .action(async (id: string, o) =>
      print(
        await withSubprocessors(async (svc) => ({ ...(await svc.changes.get(id)), accounts: await svc.changes.notices(id, defined({ limit: o.limit, after: o.after })) })),
        !!o.json,
        (c) =>
          [
            changeLine(c),
            `notices: ${Object.entries(c.notices).map(([k, v]) => `${k} ${v}`).join(', ')}`,
            ...c.accounts.map((n: any) => `  ${n.accountId}  ${String(n.status).padEnd(9)} ${n.notifiedAt ? `notified ${n.notifiedAt}` : 'not notified yet'}${n.decidedBy ? `  decided by ${n.decidedBy} at ${n.decidedAt}` : ''}`),
          ].join('\n'),
      ),
    );
  staffCommand(notices, 'resume', 'start the notice workflow of every change whose period has not ended (after a failed start; idempotent)').action(async (o) =>
    print(
      await withDb((db, cfg) => withTemporal((client) => subprocessorService({ db, clock: systemClock, temporal: { client, taskQueue: cfg.temporal.taskQueue } }).changes.resume())),
      !!o.json,
      (rows) => rows.map((r: any) => `${r.changeId}  ${r.workflowId}  ${r.started ? 'started' : 'already running or finished'}`).join('\n') || '(no open changes)',
    ),
  );
  staffCommand(notices, 'decide', "record an account's decision on a notice for it: accept (the recipient may get its traffic now) or object (it never does)")
    .argument('<changeId>', 'change id')
    .argument('<accountId>', 'account id')
    .argument('<decision>', 'accept or object')
    .requiredOption('--reason <text>', 'what the account said and how (3-500 characters; kept with the decision)')
    .action(async (changeId: string, accountId: string, decision: string, o) =>
      print(await withSubprocessors((svc) => svc.notices.decide(changeId, accountId, { decision, reason: o.reason }, cliActor())), !!o.json, (n) =>
        `${n.changed ? 'recorded' : 'unchanged'}: ${n.accountId} ${n.status} for change ${n.changeId}${n.holding ? ' (the recipient is held back)' : ''}`,
      ),
    );

  staffCommand(register, 'completeness', 'every provider (and other recipient) whose entry is missing or lacks facts').action(async (o) =>
    print(await withRegister((svc) => svc.completeness()), !!o.json, (c) => {
      const lines = [
        ...c.providers.map((p: any) => `provider  ${p.provider.padEnd(24)} ${p.missing.length ? `INCOMPLETE: ${p.missing.join(', ')}` : 'complete'}`),
        ...c.otherRecipients.map((r: any) => `${r.kind.padEnd(9).slice(0, 9)} ${r.name.padEnd(24)} ${r.missing.length ? `INCOMPLETE: ${r.missing.join(', ')}` : 'complete'}`),
      ];
      return `${lines.join('\n') || '(no providers or recipients)'}\n${c.complete ? 'the register is complete' : 'the register is INCOMPLETE'}`;
    }),
  );
  staffCommand(register, 'record', 'the record of processing activities (GDPR article 30) from the register and the retention policies, as CSV or PDF')
    .option('--csv', 'write CSV (the default)')
    .option('--pdf', 'write PDF')
    .requiredOption('--output <file>', 'where to write it')
    .action(async (o) => {
      if (o.csv && o.pdf) throw new UsageError('give --csv or --pdf, not both');
      const written = await withDb(async (db, cfg) => {
        const r = await ropaService({ db, clock: systemClock, controller: cfg.invoicing.issuer }).recordOfProcessing({ format: o.pdf ? 'pdf' : 'csv' });
        // Written next to the target and renamed when complete: a failure leaves no half file behind.
        const partial = `${o.output}.partial`;
        try {
          fs.writeFileSync(partial, r.body, { mode: 0o600 });
          fs.renameSync(partial, o.output);
        } catch (err) {
          fs.rmSync(partial, { force: true });
          throw err;
        }
        return { format: r.format, file: path.resolve(o.output), bytes: Buffer.byteLength(r.body) };
      });
      print(written, !!o.json, (w) => `wrote the record of processing activities (${w.format}, ${w.bytes} bytes) to ${w.file}`);
    });
  staffCommand(register, 'changes', 'the change log, newest first')
    .option('--limit <n>', 'how many', '50')
    .option('--before <id>', 'the last change id of the previous page')
    .option('--entity <id>', 'only the changes of this activity or recipient')
    .action(async (o) =>
      print(await withRegister((svc) => svc.changes(defined({ limit: o.limit, before: o.before, entityId: o.entity }))), !!o.json, (rows) =>
        rows.map((c: any) => `#${c.id}  ${c.changedAt}  ${c.actor}  ${c.action} ${c.entityType} ${c.entityId}: ${c.reason}`).join('\n') || '(no changes)',
      ),
    );
}
