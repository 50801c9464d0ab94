import type { Command } from 'commander';

import { systemClock } from '../clock';
import { ValidationError } from '../errors';
import { privacyService, type PrivacyService } from '../privacy/privacy.service';

import { print, withDb, withTemporal, defined, staffCommand, cliActor } from './shared';

const withDsr = <T>(fn: (svc: PrivacyService) => Promise<T>, needsTemporal = true): Promise<T> =>
  withDb((db, cfg) =>
    needsTemporal
      ? withTemporal((client) => fn(privacyService({ db, clock: systemClock, config: cfg, client, taskQueue: cfg.temporal.taskQueue })))
      : fn(privacyService({ db, clock: systemClock, config: cfg })),
  );

const dsrHuman = (r: any) =>
  [
    `${r.id}  ${r.type}  ${r.status}${r.overdue ? '  OVERDUE' : ''}`,
    `received ${r.receivedAt}  due ${r.dueDate}${r.extended ? ' (extended)' : ''}  jurisdiction ${r.jurisdiction}  channel ${r.channel}`,
    `identity: ${r.verifiedAt ? `verified ${r.verifiedAt} (${r.verificationMethod})` : 'not verified yet'}`,
    ...(r.events ? ['', 'trail:', ...r.events.map((e: any) => `  ${e.at}  ${e.actor.padEnd(22)} ${e.action}`)] : []),
    ...(r.erasureEvidence?.length ? ['', 'erased:', ...r.erasureEvidence.map((e: any) => `  ${e.category} ${e.action}: ${e.rows}`)] : []),
  ].join('\n');


/** Data-subject requests and privacy-aware usage analytics. */
export function registerPrivacy(program: Command): void {
  const dsr = program.command('dsr').description('data-subject requests (access, portability, correction, deletion, restriction, objection, consent withdrawal, payload)');
  staffCommand(dsr, 'create', 'take a request; starts its workflow, which sends a verification code to the email on record')
    .requiredOption('--type <type>', 'access | portability | correction | deletion | restriction | objection | consent_withdrawal | payload')
    .requiredOption('--email <email>', "the subject's email")
    .option('--account <id>', 'only this account')
    .option('--jurisdiction <j>', 'gdpr | uk_gdpr | ccpa | unknown (the strictest)', 'unknown')
    .option('--changes <json>', 'correction: {"user":{"name":"..."},"account":{"billing_email":"..."}}')
    .action(async (o) => {
      let changes: unknown;
      if (o.changes !== undefined) {
        try {
          changes = JSON.parse(o.changes);
        } catch {
          throw new ValidationError('--changes must be JSON, e.g. {"user":{"name":"New Name"}}');
        }
      }
      print(await withDsr((svc) => svc.create(defined({ type: o.type, email: o.email, accountId: o.account, jurisdiction: o.jurisdiction, changes }), cliActor())), !!o.json, (r) => `${r.id}  ${r.type}  due ${r.dueDate}  (${r.workflowId})`);
    });
  staffCommand(dsr, 'list', 'requests by due date')
    .option('--open', 'only open requests')
    .option('--overdue', 'only overdue requests')
    .option('--type <type>', 'one type')
    .option('--limit <n>', 'page size', '100')
    .option('--after <id>', 'the last request id of the previous page')
    .action(async (o) =>
      print(await withDsr((svc) => svc.list(defined({ status: o.open ? 'open' : undefined, overdue: o.overdue ? 'true' : undefined, type: o.type, limit: o.limit, after: o.after })), false), !!o.json, (rows) =>
        rows.map((r: any) => `${r.id}  ${r.type.padEnd(18)} ${r.status.padEnd(19)} due ${r.dueDate}${r.overdue ? '  OVERDUE' : ''}`).join('\n') || '(none)',
      ),
    );
  staffCommand(dsr, 'show', 'a request: status, deadline, trail, erasure evidence, answer')
    .argument('<id>', 'request id')
    .action(async (id: string, o) => print(await withDsr((svc) => svc.get(id)), !!o.json, dsrHuman));
  staffCommand(dsr, 'verify', "record a compliance officer's identity check")
    .argument('<id>', 'request id')
    .requiredOption('--method <m>', 'document | account_login | video_call | other')
    .requiredOption('--note <text>', 'how identity was checked')
    .action(async (id: string, o) => print(await withDsr((svc) => svc.verify(id, { method: o.method, note: o.note }, cliActor())), !!o.json, dsrHuman));
  staffCommand(dsr, 'extend', 'extend the deadline once (within the first period); the subject is told the reason')
    .argument('<id>', 'request id')
    .requiredOption('--reason <text>', 'why, for the subject')
    .action(async (id: string, o) => print(await withDsr((svc) => svc.extend(id, { reason: o.reason }, cliActor())), !!o.json));
  staffCommand(dsr, 'refuse', 'refuse the request, or items of it, on a ground of the policy')
    .argument('<id>', 'request id')
    .requiredOption('--ground <g>', 'identity_not_verified | security | trade_secrets | third_party_rights | technical_feasibility | law | manifestly_unfounded_or_excessive')
    .requiredOption('--explanation <text>', 'for the subject')
    .option('--item <item...>', 'only these items (a data category, or user.<field> / account.<field> of a correction)')
    .action(async (id: string, o) => print(await withDsr((svc) => svc.refuse(id, defined({ ground: o.ground, explanation: o.explanation, items: o.item }), cliActor())), !!o.json));
  staffCommand(dsr, 'withdraw', 'the subject withdrew the request')
    .argument('<id>', 'request id')
    .action(async (id: string, o) => print(await withDsr((svc) => svc.withdraw(id, cliActor())), !!o.json));
  staffCommand(dsr, 'approve', 'approve the changes of a correction')
    .argument('<id>', 'request id')
    .action(async (id: string, o) => print(await withDsr((svc) => svc.approve(id, cliActor())), !!o.json));

  staffCommand(program.command('analytics').description('usage analytics (honours restriction and objection)'), 'usage', 'usage per user and model for a UTC day, without restricted or objecting subjects')
    .requiredOption('--day <YYYY-MM-DD>', 'a UTC day')
    .action(async (o) => {
      const t = Date.parse(`${o.day}T00:00:00Z`);
      if (!/^\d{4}-\d{2}-\d{2}$/.test(o.day) || !Number.isFinite(t)) throw new ValidationError('--day must be a date YYYY-MM-DD');
      print(await withDsr((svc) => svc.usageAnalytics({ from: new Date(t).toISOString(), to: new Date(t + 86_400_000).toISOString() }), false), !!o.json);
    });
}
