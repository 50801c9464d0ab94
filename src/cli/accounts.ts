import type { Command } from 'commander';


import { print, humanize, withStaff, defined, staffCommand } from './shared';

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
    .action(async (id: string, o) => print(await withStaff((ops) => ops.getAccount({ id })), !!o.json));

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
    .action(async (o) =>
      print(
        await withStaff((ops) => ops.createKey(defined({ accountId: o.account, userId: o.user, name: o.name, rateLimitRpm: o.rateLimitRpm }))),
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
