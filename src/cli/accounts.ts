import type { Command } from 'commander';


import { print, humanize, withStaff, defined, staffCommand, UsageError, cliActor } from './shared';
import { accountEventsService } from '../notifications/events.service';
import { systemClock } from '../clock';
import { suspensionService, type SuspensionService } from '../invoicing/suspension.service';
import { regionPolicyService } from '../accounts/regionPolicy.service';
import { subprocessorService } from '../register/subprocessor.service';

type SuspensionStatus = Awaited<ReturnType<SuspensionService['status']>>;

/** `accounts show`: the suspension in force (or none) and the last few lifted ones. */
function suspensionText(s: SuspensionStatus): string {
  const c = s.current;
  const lines = [
    c
      ? `suspension: SUSPENDED since ${c.suspendedAt} by ${c.suspendedBy} (${c.invoiceId ? `unpaid invoice ${c.invoiceId}` : 'staff decision'}): ${c.reason}`
      : `suspension: ${s.suspended ? 'SUSPENDED (no suspension record)' : 'none'}`,
  ];
  const past = s.history.filter((h) => h.reinstatedAt !== null).slice(0, 5);
  for (const h of past) lines.push(`  past: ${h.suspendedAt} by ${h.suspendedBy}: ${h.reason}; reinstated ${h.reinstatedAt} by ${h.reinstatedBy}: ${h.reinstateReason ?? '-'}`);
  return lines.join('\n');
}

/** Customer accounts, their users and their API keys. */
export function registerAccounts(program: Command): void {
  const accounts = program.command('accounts').description('customer accounts');
  staffCommand(accounts, 'create', 'create an account')
    .requiredOption('--name <name>', 'organization name')
    .option('--plan <plan>', 'prepaid | postpaid', 'prepaid')
    .option('--country <cc>', 'ISO 3166-1 alpha-2 country code')
    .option('--vat-id <id>', 'VAT id')
    .option('--billing-email <email>', 'where invoices go')
    .option('--credit-limit <amount>', 'credit limit in USD for postpaid accounts, as a decimal', '0')
    .action(async (o) =>
      print(
        await withStaff((ops) =>
          ops.createAccount(defined({ name: o.name, plan: o.plan, country: o.country, vatId: o.vatId, billingEmail: o.billingEmail, creditLimit: o.creditLimit })),
        ),
        !!o.json,
      ),
    );
  staffCommand(accounts, 'list', 'list accounts')
    .option('--limit <n>', 'page size', '100')
    .option('--after <id>', 'the last id of the previous page')
    .action(async (o) => print(await withStaff((ops) => ops.listAccounts(defined({ limit: o.limit, after: o.after }))), !!o.json));
  staffCommand(accounts, 'show', 'show one account')
    .argument('<id>', 'account id')
    .action(async (id: string, o) =>
      print(
        await withStaff(async (ops, db) => ({ ...(await ops.getAccount({ id })), suspension: await suspensionService({ db, clock: systemClock }).status(id) })),
        !!o.json,
        ({ suspension, ...account }) => `${humanize(account)}\n${suspensionText(suspension)}`,
      ),
    );
  staffCommand(accounts, 'suspend', 'suspend an account by hand: the gateway refuses its model calls (account_suspended); lifted by staff only')
    .argument('<id>', 'account id')
    .requiredOption('--reason <text>', 'why (3-500 characters, recorded with who and when)')
    .action(async (id: string, o) =>
      print(await withStaff((_ops, db) => suspensionService({ db, clock: systemClock }).suspend({ accountId: id, reason: o.reason, actor: cliActor() })), !!o.json, (r) =>
        r.suspended ? `suspended: ${id}\n${humanize(r.suspension)}` : `already suspended (nothing changed)\n${humanize(r.suspension)}`,
      ),
    );
  staffCommand(accounts, 'reinstate', 'reinstate a suspended account: its model calls work again within seconds')
    .argument('<id>', 'account id')
    .requiredOption('--reason <text>', 'why (3-500 characters, recorded with who and when)')
    .action(async (id: string, o) =>
      print(await withStaff((_ops, db) => suspensionService({ db, clock: systemClock }).reinstate({ accountId: id, reason: o.reason, actor: cliActor() })), !!o.json, (r) =>
        r.reinstated ? `reinstated: ${id}\n${humanize(r.suspension)}` : 'not suspended (nothing changed)',
      ),
    );
  staffCommand(
    accounts,
    'region-policy',
    "show, set (--allow) or remove (--clear) an account's region policy: the gateway then routes it only to providers processing in the allowed countries",
  )
    .argument('<id>', 'account id')
    .option('--allow <list>', 'a named region or countries, comma-separated: EEA, DE,FR or EEA,CH')
    .option('--clear', 'remove the policy: every route is used again')
    .option('--reason <text>', 'why (3-500 characters; required with --allow or --clear; recorded with who and when)')
    .action(async (id: string, o) => {
      if (o.allow !== undefined && o.clear) throw new UsageError('give --allow or --clear, not both');
      const policyText = (p: { allowedCountries: string[]; label: string | null; updatedAt: string } | null) =>
        p ? `region policy: ${p.label ?? 'countries'}: ${p.allowedCountries.join(', ')} (since ${p.updatedAt})` : 'region policy: none (every route is used)';
      if (o.allow !== undefined) {
        return print(await withStaff((_ops, db) => regionPolicyService({ db }).set({ accountId: id, allow: o.allow, reason: o.reason, actor: cliActor() })), !!o.json, (r) =>
          `${r.changed ? 'set' : 'unchanged'}: ${id}\n${policyText(r.policy)}`,
        );
      }
      if (o.clear) {
        return print(await withStaff((_ops, db) => regionPolicyService({ db }).clear({ accountId: id, reason: o.reason, actor: cliActor() })), !!o.json, (r) =>
          r.cleared ? `cleared: ${id}\nregion policy: none (every route is used)` : 'no region policy (nothing changed)',
        );
      }
      return print(await withStaff((_ops, db) => regionPolicyService({ db }).get(id)), !!o.json, (r) =>
        [policyText(r.policy), ...(r.changes as { changedAt: string; action: string; actor: string; reason: string }[]).map((c) => `  ${c.changedAt} ${c.action} by ${c.actor}: ${c.reason}`)].join('\n'),
      );
    });
  staffCommand(accounts, 'alerts', "show or set an account's alert settings (low-balance thresholds, alert emails)")
    .argument('<id>', 'account id')
    .option('--threshold <amount...>', 'low-balance thresholds in the account currency (at most 5; replaces the list)')
    .option('--no-thresholds', 'remove every low-balance threshold')
    .option('--email-alerts <on|off>', 'email alerts to the billing address')
    .action(async (id: string, o) => {
      const settings = defined({
        lowBalanceThresholds: o.thresholds === false ? [] : o.threshold,
        emailAlerts: o.emailAlerts === undefined ? undefined : o.emailAlerts === 'on' ? true : o.emailAlerts === 'off' ? false : o.emailAlerts,
      });
      if (typeof settings.emailAlerts === 'string') throw new UsageError('--email-alerts must be on or off');
      print(
        await withStaff((_ops, db) => {
          const alerts = accountEventsService({ db });
          return Object.keys(settings).length ? alerts.setAlertSettings({ accountId: id, settings }) : alerts.getAlertSettings({ accountId: id });
        }),
        !!o.json,
      );
    });
  staffCommand(accounts, 'events', "list an account's events (balance, key limit, top-up, invoice), newest first")
    .argument('<id>', 'account id')
    .option('--type <type>', 'only this event type, e.g. balance.low')
    .option('--limit <n>', 'page size', '50')
    .option('--before <cursor>', 'nextPage.before of the previous page')
    .action(async (id: string, o) =>
      print(await withStaff((_ops, db) => accountEventsService({ db }).listEvents({ accountId: id, query: defined({ type: o.type, limit: o.limit, before: o.before }) })), !!o.json, (r) =>
        r.items.length === 0
          ? '(none)'
          : r.items.map((e: { occurredAt: string; type: string; id: string; data: unknown }) => `${e.occurredAt}  ${e.type}  ${e.id}  ${JSON.stringify(e.data)}`).join('\n') + (r.nextPage ? `\n(more: --before ${r.nextPage.before})` : ''),
      ),
    );

  // Data-processing agreement: the account is told of, and held back from, each new sub-processor (docs/processing-register.md).
  const agreement = accounts.command('processing-agreement').description("an account's data-processing agreement");
  staffCommand(agreement, 'show', "show an account's data-processing agreement").argument('<accountId>', 'account id').action(async (id: string, o) =>
    print(await withStaff((_ops, db) => subprocessorService({ db, clock: systemClock }).agreements.get(id)), !!o.json, (a) => (a ? humanize(a) : 'no data-processing agreement')),
  );
  staffCommand(agreement, 'set', "record or replace an account's data-processing agreement")
    .argument('<accountId>', 'account id')
    .requiredOption('--ref <ref>', 'the agreement reference (at most 200 characters)')
    .requiredOption('--signed-on <date>', 'when it was signed (YYYY-MM-DD)')
    .requiredOption('--reason <text>', 'why (3-500 characters, recorded with who and when)')
    .action(async (id: string, o) =>
      print(await withStaff((_ops, db) => subprocessorService({ db, clock: systemClock }).agreements.set(id, { agreementRef: o.ref, signedOn: o.signedOn, reason: o.reason }, cliActor())), !!o.json),
    );

  const users = program.command('users').description('people of an account');
  staffCommand(users, 'create', 'add a person to an account')
    .requiredOption('--account <id>', 'account id')
    .requiredOption('--name <name>', 'full name')
    .requiredOption('--email <email>', 'email address')
    .option('--phone <phone>', 'phone number')
    .option('--job-title <title>', 'job title')
    .action(async (o) =>
      print(await withStaff((ops) => ops.createUser(defined({ accountId: o.account, name: o.name, email: o.email, phone: o.phone, jobTitle: o.jobTitle }))), !!o.json),
    );

  const keys = program.command('keys').description('API keys');
  staffCommand(keys, 'create', 'create an API key; the key is printed once and only its hash is stored')
    .requiredOption('--account <id>', 'account id')
    .option('--user <id>', 'user the key belongs to')
    .option('--name <name>', 'label')
    .option('--rate-limit-rpm <n>', 'requests per minute for this key')
    .option('--kind <kind>', 'inference (model calls) | management (manages the account\'s keys at /v1/keys; no model calls)', 'inference')
    .option('--expires-at <time>', 'ISO 8601 time from which the key stops working, e.g. 2027-12-31T23:59:59Z')
    .option('--spend-limit <amount>', 'most the key may spend in USD per --limit-window (or in its life without one)')
    .option('--limit-window <window>', 'daily | weekly | monthly (UTC calendar; needs --spend-limit)')
    .action(async (o) =>
      print(
        await withStaff((ops) =>
          ops.createKey(
            defined({
              accountId: o.account,
              userId: o.user,
              name: o.name,
              rateLimitRpm: o.rateLimitRpm,
              kind: o.kind,
              expiresAt: o.expiresAt,
              spendLimit: o.spendLimit,
              limitWindow: o.limitWindow,
            }),
          ),
        ),
        !!o.json,
        (r) => `${humanize({ ...r, key: undefined })}\n\nkey: ${r.key}\n(store it now: it is not shown again)`,
      ),
    );
  staffCommand(keys, 'list', "list an account's keys (metadata only)")
    .requiredOption('--account <id>', 'account id')
    .option('--limit <n>', 'page size', '100')
    .option('--after <key>', 'the last key id of the previous page')
    .action(async (o) => print(await withStaff((ops) => ops.listKeys(defined({ id: o.account, limit: o.limit, after: o.after }))), !!o.json));
  staffCommand(keys, 'revoke', 'revoke an API key (idempotent)')
    .argument('<id>', 'key id')
    .action(async (id: string, o) => print(await withStaff((ops) => ops.revokeKey({ id })), !!o.json));
}
