import { Command, CommanderError, Option } from 'commander';

import { systemClock } from './clock';
import { ConfigError, loadConfig, providerCredentialEnv, temporalAddress, type Config } from './config';
import { checkPostgresReachable, ensureDatabase } from './db/database';
import { createDb, redactDatabaseUrl, type Db } from './db/knex';
import { migrateLatest, migrationStatus } from './db/migrate';
import { AppError, DependencyUnavailableError, ValidationError } from './errors';
import { createLogger } from './logger';
import { stopOnSignals } from './process/lifecycle';
import { staffOperations, type StaffOperations } from './staff/operations';
import { ledgerOperations, type LedgerOperations } from './staff/ledgerOperations';
import { Client, Connection } from '@temporalio/client';
import os from 'node:os';
import fs from 'node:fs';
import path from 'node:path';
import { invoiceRuns } from './invoicing/runs';
import { invoiceQueries } from './invoicing/invoices';
import { taxRates } from './invoicing/taxRates';
import { renderInvoiceHtml, renderInvoicePdf } from './billing/invoiceRender';
import { reconciliationService } from './reconciliation/service';
import { dsrService, type DsrService } from './privacy/service';
import { usageAnalytics } from './db/analytics';
import { retentionService, type RetentionService } from './privacy/retention';
import { createStaffUser } from './console/app';

/**
 * `mixroute <verb>`: the servers, the worker, dev mode, migrations and every
 * staff action. Staff verbs talk to PostgreSQL directly (an operator on the
 * box needs no running server). Every verb takes --json for scripts. Errors are
 * one line on stderr and a non-zero exit: 1 for a refused or failed action,
 * 2 for a usage mistake.
 */

let config: Config;
function getConfig(): Config {
  config ??= loadConfig();
  return config;
}

class UsageError extends Error {}

function print(result: unknown, json: boolean, human?: (r: any) => string): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } else {
    process.stdout.write(`${human ? human(result) : humanize(result)}\n`);
  }
}

function humanize(value: unknown): string {
  if (Array.isArray(value)) {
    if (value.length === 0) return '(none)';
    return value.map((v) => (typeof v === 'object' && v ? Object.entries(v).filter(([, x]) => typeof x !== 'object' || x === null).map(([, x]) => x ?? '-').join('  ') : String(v))).join('\n');
  }
  if (value && typeof value === 'object') {
    return Object.entries(value)
      .map(([k, v]) => `${k}: ${v !== null && typeof v === 'object' ? JSON.stringify(v) : (v ?? '-')}`)
      .join('\n');
  }
  return String(value);
}

/** The one way CLI verbs open the database: a clear line if it is unreachable, always closed after. */
async function withDb<T>(fn: (db: Db, cfg: Config) => Promise<T>): Promise<T> {
  const cfg = getConfig();
  await checkPostgresReachable(cfg.databaseUrl);
  const db = createDb({ databaseUrl: cfg.databaseUrl, poolMax: 2, applicationName: 'mixroute-cli' });
  try {
    return await fn(db, cfg);
  } finally {
    await db.destroy();
  }
}

/** The one way CLI verbs reach Temporal: a clear line if it is unreachable, always closed after. */
async function withTemporal<T>(fn: (client: Client, cfg: Config) => Promise<T>): Promise<T> {
  const cfg = getConfig();
  const connection = await Connection.connect({ address: temporalAddress(cfg), connectTimeout: 5_000 }).catch((err: unknown) => {
    throw new DependencyUnavailableError(`Temporal is unreachable at ${temporalAddress(cfg)}: ${(err as Error).message}`);
  });
  try {
    return await fn(new Client({ connection, namespace: cfg.temporal.namespace }), cfg);
  } finally {
    await connection.close();
  }
}

const withStaff = <T>(fn: (ops: StaffOperations, db: Db) => Promise<T>): Promise<T> =>
  withDb((db, cfg) => fn(staffOperations({ db, clock: systemClock, config: cfg }), db));

/** Drops undefined values so zod sees only the flags that were given. */
function defined(obj: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined));
}

const jsonOption = () => new Option('--json', 'print machine-readable JSON');

/** The price options of `models add` and `models price` (USD per million tokens). */
function priceOptions(cmd: Command): Command {
  return cmd
    .requiredOption('--input-per-mtok <amount>', 'USD per million input tokens')
    .requiredOption('--output-per-mtok <amount>', 'USD per million output tokens')
    .option('--cached-input-per-mtok <amount>', 'USD per million cached input tokens')
    .option('--cache-write-per-mtok <amount>', 'USD per million five-minute prompt-cache write tokens (default: the input price)')
    .option('--cache-write-1h-per-mtok <amount>', 'USD per million one-hour prompt-cache write tokens (default: the input price)')
    .option('--effective-from <iso>', 'when the price takes effect (default now)');
}

/** Those options' values, as the staff operations take them. */
function priceFields(o: Record<string, string | undefined>) {
  return {
    inputPerMtok: o.inputPerMtok,
    outputPerMtok: o.outputPerMtok,
    cachedInputPerMtok: o.cachedInputPerMtok,
    cacheWritePerMtok: o.cacheWritePerMtok,
    cacheWrite1hPerMtok: o.cacheWrite1hPerMtok,
    effectiveFrom: o.effectiveFrom,
  };
}

function staffCommand(parent: Command, name: string, description: string): Command {
  return parent.command(name).description(description).addOption(jsonOption());
}

const program = new Command('mixroute')
  .description('MixRoute backend: gateway, worker, admin API, and staff actions')
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride();

program
  .command('dev')
  .description('run everything locally: Temporal dev server (unless TEMPORAL_ADDRESS), migrations, schedules, worker, gateway, admin API')
  .action(async () => {
    const cfg = getConfig();
    const logger = createLogger({ ...cfg, logFormat: (await import('./dev/logFormat')).devLogFormat(cfg) }, 'dev');
    const { runDev } = await import('./dev');
    const say = (line: string) => process.stdout.write(`[dev] ${line}\n`);
    // Ctrl-C during start-up is remembered and acted on once everything is up to be stopped.
    const state: { dev?: Awaited<ReturnType<typeof runDev>>; interrupted: boolean } = { interrupted: false };
    const onSignal = () => {
      if (state.interrupted) process.exit(130);
      state.interrupted = true;
      if (state.dev) void state.dev.stop();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    state.dev = await runDev(cfg, logger, say);
    if (state.interrupted) void state.dev.stop();
    process.exitCode = await state.dev.done;
  });

for (const [role, description] of [
  ['gateway', 'run the OpenAI-compatible gateway (GATEWAY_PORT)'],
  ['admin', 'run the staff admin API (ADMIN_PORT)'],
  ['worker', 'run a Temporal worker for all workflows and activities'],
] as const) {
  program
    .command(role)
    .description(description)
    .action(async () => {
      const cfg = getConfig();
      const started =
        role === 'gateway'
          ? await (await import('./gateway/server')).startGatewayServer(cfg, providerCredentialEnv())
          : role === 'admin'
            ? await (await import('./admin/server')).startAdminServer(cfg)
            : await (await import('./temporal/runWorker')).startWorker(cfg);
      stopOnSignals(started.logger, started.stop);
      if ('running' in started) {
        // The worker stops by itself on a fatal error: exit non-zero so a supervisor restarts it.
        await started.running.catch((err: unknown) => {
          started.logger.error({ err }, 'worker failed');
          process.exit(1);
        });
      }
    });
}

program
  .command('migrate')
  .description('create the database if missing and apply pending migrations')
  .option('--status', 'only show applied and pending migrations')
  .addOption(jsonOption())
  .action(async (opts: { status?: boolean; json?: boolean }) => {
    const cfg = getConfig();
    if (!opts.status) await ensureDatabase(cfg.databaseUrl);
    else await checkPostgresReachable(cfg.databaseUrl);
    const db = createDb({ databaseUrl: cfg.databaseUrl, poolMax: 1 });
    try {
      const applied = opts.status ? [] : await migrateLatest(db);
      const status = await migrationStatus(db);
      print({ database: redactDatabaseUrl(cfg.databaseUrl), appliedNow: applied, ...status }, !!opts.json, (r) =>
        [`database: ${r.database}`, `applied now: ${r.appliedNow.length ? r.appliedNow.join(', ') : '(none)'}`, `applied: ${r.applied.length}`, `pending: ${r.pending.length ? r.pending.join(', ') : '(none)'}`].join('\n'),
      );
    } finally {
      await db.destroy();
    }
  });

program
  .command('doctor')
  .description('check PostgreSQL, migrations, Temporal and a worker round trip')
  .addOption(jsonOption())
  .option('--timeout <seconds>', 'how long to wait for a worker', '30')
  .action(async (opts: { json?: boolean; timeout: string }) => {
    const cfg = getConfig();
    const checks: Record<string, { ok: boolean; detail: string }> = {};
    try {
      await checkPostgresReachable(cfg.databaseUrl);
      const db = createDb({ databaseUrl: cfg.databaseUrl, poolMax: 1 });
      try {
        const s = await migrationStatus(db);
        checks.postgres = { ok: true, detail: redactDatabaseUrl(cfg.databaseUrl) };
        checks.migrations = { ok: s.pending.length === 0, detail: `${s.applied.length} applied, ${s.pending.length} pending` };
      } finally {
        await db.destroy();
      }
    } catch (err) {
      checks.postgres = { ok: false, detail: (err as Error).message };
    }
    const { Connection, Client } = await import('@temporalio/client');
    try {
      const connection = await Connection.connect({ address: temporalAddress(cfg), connectTimeout: 3_000 });
      try {
        checks.temporal = { ok: true, detail: `${temporalAddress(cfg)} namespace ${cfg.temporal.namespace}` };
        const { runHealthProbe } = await import('./temporal/healthProbe');
        const client = new Client({ connection, namespace: cfg.temporal.namespace });
        const probe = await runHealthProbe(client, cfg.temporal.taskQueue, Number(opts.timeout) * 1000);
        checks.worker = { ok: true, detail: `task queue ${cfg.temporal.taskQueue}: round trip ok, database time ${probe.databaseTime}` };
      } catch (err) {
        checks.worker = { ok: false, detail: `no worker completed a health probe on task queue ${cfg.temporal.taskQueue}: ${(err as Error).message}` };
      } finally {
        await connection.close();
      }
    } catch (err) {
      checks.temporal = { ok: false, detail: `${temporalAddress(cfg)}: ${(err as Error).message}` };
    }
    const ok = Object.values(checks).every((c) => c.ok);
    print({ ok, checks }, !!opts.json, (r) =>
      Object.entries(r.checks as typeof checks).map(([k, c]) => `${c.ok ? 'ok  ' : 'FAIL'} ${k}: ${c.detail}`).join('\n'),
    );
    if (!ok) process.exitCode = 1;
  });

// --- staff verbs -----------------------------------------------------------

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

const providers = program.command('providers').description('upstream model providers');
staffCommand(providers, 'add', 'add a provider')
  .requiredOption('--name <name>', 'short name, e.g. openai')
  .requiredOption('--base-url <url>', 'API base URL, e.g. https://api.openai.com/v1')
  .option('--api-key-env <var>', 'the PROVIDER_<NAME>_API_KEY variable holding its API key (default: from --name)')
  .option('--kind <kind>', 'openai | anthropic', 'openai')
  .action(async (o) =>
    print(await withStaff((ops) => ops.addProvider(defined({ name: o.name, baseUrl: o.baseUrl, apiKeyEnv: o.apiKeyEnv, kind: o.kind }))), !!o.json),
  );
staffCommand(providers, 'list', 'list providers')
  .option('--limit <n>', 'page size', '100')
  .option('--after <key>', 'the last name of the previous page')
  .action(async (o) => print(await withStaff((ops) => ops.listProviders(defined({ limit: o.limit, after: o.after }))), !!o.json));

const models = program.command('models').description('models and their prices');
priceOptions(
  staffCommand(models, 'add', 'add a model with its price, or a new price version (USD per million tokens)')
    .requiredOption('--name <public>', 'public model name clients send')
    .requiredOption('--provider <name>', 'provider name')
    .requiredOption('--upstream-model <model>', "the provider's model name"),
).action(async (o) =>
  print(
    await withStaff((ops) =>
      ops.addModel(
        defined({
          name: o.name,
          provider: o.provider,
          upstreamModel: o.upstreamModel,
          ...priceFields(o),
        }),
      ),
    ),
    !!o.json,
  ),
);
priceOptions(
  staffCommand(models, 'price', 'add a price version of an existing model (USD per million tokens); its route stays').requiredOption('--name <public>', 'public model name'),
).action(async (o) =>
  print(
    await withStaff((ops) =>
      ops.addPrice(
        defined({
          name: o.name,
          ...priceFields(o),
        }),
      ),
    ),
    !!o.json,
  ),
);
staffCommand(models, 'fallbacks', "set a model's ordered fallback routes (replaces the list; none clears it)")
  .requiredOption('--name <public>', 'public model name')
  .option('--route <provider:upstream-model>', 'a fallback route; repeat in order', (v: string, acc: string[]) => [...acc, v], [] as string[])
  .action(async (o) => {
    const routes = (o.route as string[]).map((r) => {
      const i = r.indexOf(':');
      if (i <= 0 || i === r.length - 1) throw new UsageError(`--route ${r}: expected provider:upstream-model`);
      return { provider: r.slice(0, i), upstreamModel: r.slice(i + 1) };
    });
    print(await withStaff((ops) => ops.setModelFallbacks({ name: o.name, routes })), !!o.json);
  });
staffCommand(models, 'list', 'list models with the price in force')
  .option('--limit <n>', 'page size', '100')
  .option('--after <key>', 'the last name of the previous page')
  .action(async (o) => print(await withStaff((ops) => ops.listModels(defined({ limit: o.limit, after: o.after }))), !!o.json));

const staffTokens = program.command('staff-tokens').description('tokens for the admin API');
staffCommand(staffTokens, 'create', 'create a staff token; printed once, only its hash is stored')
  .requiredOption('--role <role>', 'billing | compliance | admin')
  .option('--name <name>', 'who or what holds it')
  .action(async (o) =>
    print(await withStaff((ops) => ops.createStaffToken(defined({ role: o.role, name: o.name }))), !!o.json, (r) =>
      `${humanize({ ...r, token: undefined })}\n\ntoken: ${r.token}\n(store it now: it is not shown again)`,
    ),
  );
staffCommand(staffTokens, 'revoke', 'revoke a staff token (idempotent)')
  .argument('<id>', 'token id')
  .action(async (id: string, o) => print(await withStaff((ops) => ops.revokeStaffToken({ id })), !!o.json));

// --- credit ------------------------------------------------------------------

/** Who is acting, for the ledger's audit columns. */
const cliActor = () => `cli:${os.userInfo().username}`;

function withLedger<T>(fn: (ops: LedgerOperations) => Promise<T>, needsTemporal = false): Promise<T> {
  return withDb((db, cfg) =>
    needsTemporal
      ? withTemporal((client) => fn(ledgerOperations({ db, billing: cfg.billing, temporal: { client, taskQueue: cfg.temporal.taskQueue } })))
      : fn(ledgerOperations({ db, billing: cfg.billing })),
  );
}

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

// --- invoicing ---------------------------------------------------------------

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
        const runs = invoiceRuns({ client, taskQueue: cfg.temporal.taskQueue, config: cfg, clock: systemClock });
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
      await withTemporal((client, cfg) => invoiceRuns({ client, taskQueue: cfg.temporal.taskQueue, config: cfg, clock: systemClock }).status({ period: o.period })),
      !!o.json,
      runHuman,
    ),
  );

const withInvoices = <T>(fn: (q: ReturnType<typeof invoiceQueries>) => Promise<T>): Promise<T> =>
  withDb((db, cfg) => fn(invoiceQueries({ db, clock: systemClock, config: cfg })));

const invoices = program.command('invoices').description('invoices and credit notes');
staffCommand(invoices, 'list', 'list invoices')
  .option('--period <YYYY-MM>', 'billing period')
  .option('--account <id>', 'account id')
  .option('--limit <n>', 'page size', '100')
  .action(async (o) => print(await withInvoices((q) => q.list(defined({ period: o.period, accountId: o.account, limit: o.limit }))), !!o.json));
staffCommand(invoices, 'show', 'an invoice with its lines')
  .argument('<id>', 'invoice id')
  .action(async (id: string, o) => print(await withInvoices((q) => q.get(id)), !!o.json));
staffCommand(invoices, 'download', 'write an invoice as PDF or HTML')
  .argument('<id>', 'invoice id')
  .option('--format <pdf|html>', 'pdf or html', 'pdf')
  .requiredOption('--out <file>', 'where to write it')
  .action(async (id: string, o) => {
    if (o.format !== 'pdf' && o.format !== 'html') throw new UsageError('--format must be pdf or html');
    const written = await withInvoices(async (q) => {
      const doc = await q.document(id);
      const body = o.format === 'pdf' ? await renderInvoicePdf(doc) : renderInvoiceHtml(doc);
      fs.writeFileSync(o.out, body);
      return { id, format: o.format, file: path.resolve(o.out), bytes: Buffer.byteLength(body) };
    });
    print(written, !!o.json);
  });
staffCommand(invoices, 'void', 'void a finalized invoice with a credit note; needs a reason')
  .argument('<id>', 'invoice id')
  .requiredOption('--reason <text>', 'why')
  .action(async (id: string, o) => print(await withInvoices((q) => q.void({ id, reason: o.reason }, cliActor())), !!o.json));

const taxRatesCmd = program.command('tax-rates').description('VAT rates by country');
staffCommand(taxRatesCmd, 'set', 'set the rate of a country from a date')
  .requiredOption('--country <CC>', 'ISO 3166-1 alpha-2')
  .requiredOption('--rate <fraction>', 'decimal fraction, e.g. 0.19')
  .requiredOption('--from <YYYY-MM-DD>', 'first day in force')
  .option('--to <YYYY-MM-DD>', 'first day no longer in force')
  .action(async (o) =>
    print(await withStaff((_ops, db) => taxRates(db).set(defined({ country: o.country, rate: o.rate, effectiveFrom: o.from, effectiveTo: o.to }))), !!o.json),
  );
staffCommand(taxRatesCmd, 'list', 'list tax rates')
  .option('--limit <n>', 'page size', '100')
  .option('--after <key>', 'the last COUNTRY:effectiveFrom of the previous page')
  .action(async (o) => print(await withStaff((_ops, db) => taxRates(db).list(defined({ limit: o.limit, after: o.after }))), !!o.json));

// --- reconciliation ----------------------------------------------------------

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

const withReconciliation = <T>(fn: (svc: ReturnType<typeof reconciliationService>) => Promise<T>): Promise<T> =>
  withDb((db) => fn(reconciliationService({ db, clock: systemClock })));

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

// --- data-subject requests ------------------------------------------------------

const withDsr = <T>(fn: (svc: DsrService) => Promise<T>, needsTemporal = true): Promise<T> =>
  withDb((db, cfg) =>
    needsTemporal
      ? withTemporal((client) => fn(dsrService({ db, clock: systemClock, config: cfg, client, taskQueue: cfg.temporal.taskQueue })))
      : fn(dsrService({ db, clock: systemClock, config: cfg })),
  );

const dsrHuman = (r: any) =>
  [
    `${r.id}  ${r.type}  ${r.status}${r.overdue ? '  OVERDUE' : ''}`,
    `received ${r.receivedAt}  due ${r.dueDate}${r.extended ? ' (extended)' : ''}  jurisdiction ${r.jurisdiction}  channel ${r.channel}`,
    `identity: ${r.verifiedAt ? `verified ${r.verifiedAt} (${r.verificationMethod})` : 'not verified yet'}`,
    ...(r.events ? ['', 'trail:', ...r.events.map((e: any) => `  ${e.at}  ${e.actor.padEnd(22)} ${e.action}`)] : []),
    ...(r.erasureEvidence?.length ? ['', 'erased:', ...r.erasureEvidence.map((e: any) => `  ${e.category} ${e.action}: ${e.rows}`)] : []),
  ].join('\n');

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
    print(await withDb((db) => usageAnalytics(db, { from: new Date(t).toISOString(), to: new Date(t + 86_400_000).toISOString() })), !!o.json);
  });

// --- retention -----------------------------------------------------------------

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

staffCommand(program.command('staff-users').description('people who sign in to the staff console'), 'create', 'add a staff member (email and password sign-in to /console)')
  .requiredOption('--email <email>', 'sign-in email')
  .requiredOption('--name <name>', 'display name')
  .requiredOption('--role <role>', 'billing | compliance | admin')
  .option('--password <password>', 'initial password (at least 12 characters); without it, read from standard input (keeps it out of the shell history)')
  .action(async (o) => {
    let password: string = o.password ?? '';
    if (!o.password) {
      const chunks: Buffer[] = [];
      for await (const c of process.stdin) chunks.push(c as Buffer);
      password = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
    }
    print(await withDb((db) => createStaffUser(db, { email: o.email, name: o.name, role: o.role, password })), !!o.json);
  });

staffCommand(program.command('demo').description("the local demo of `mixroute dev` (DEV_DEMO)"), 'traffic', 'send a minute of mixed requests to the local gateway with the demo account, then stop')
  .option('--seconds <n>', 'how long, at most 300', '60')
  .option('--rps <n>', 'requests per second, at most 50', '4')
  .option('--key <key>', "an API key to use (default: a key of the demo account made for the run and revoked after it)")
  .action(async (o) => {
    if (getConfig().dev.production) throw new UsageError('demo traffic does not run with NODE_ENV=production');
    const { demoTrafficCommand } = await import('./demo/traffic');
    const say = (line: string) => process.stderr.write(`[demo] ${line}\n`);
    print(await demoTrafficCommand(getConfig(), { seconds: o.seconds, rps: o.rps, key: o.key }, say), !!o.json, (r) =>
      `sent ${r.sent} requests to ${r.gateway} in ${r.seconds} s; by status: ${Object.entries(r.byStatus).map(([k, v]) => `${k} ${v}`).join(', ')}; by model: ${Object.entries(r.byModel).map(([k, v]) => `${k} ${v}`).join(', ')}`,
    );
  });

staffCommand(program.command('settlement').description('usage settlement (settlement shards)'), 'migrate', 'start every settlement shard with a sweep and retire the per-account metering workflows (safe to repeat)')
  .option('--terminate', 'terminate running metering:* workflows instead of letting each settle its account once more and complete')
  .option('--wait', 'wait (up to 5 minutes) until no metering:* workflow runs any more')
  .action(async (o) => {
    const { migrateSettlement } = await import('./metering/settlementMigration');
    print(
      await withTemporal((client, cfg) =>
        migrateSettlement(
          client,
          { taskQueue: cfg.temporal.taskQueue, shards: cfg.billing.settlementShards, sweepMs: cfg.billing.settleSweepMs, minIntervalMs: cfg.billing.settleMinIntervalMs },
          { terminate: !!o.terminate, wait: !!o.wait },
        ),
      ),
      !!o.json,
      (r) =>
        `settlement shards started or woken with a sweep: ${r.shards}\nmetering:* workflows running: ${r.meteringRunning} (draining: ${r.drained}, terminated: ${r.terminated})` +
        (r.meteringLeft === null ? '' : `\nstill running after the wait: ${r.meteringLeft}`),
    );
  });

// Every verb gets --help from commander; make usage errors one line too.
program.configureOutput({
  writeErr: (str) => process.stderr.write(str),
});

async function main(argv: string[]): Promise<void> {
  try {
    await program.parseAsync(argv);
  } catch (err) {
    process.exitCode = reportError(err);
  }
}

function reportError(err: unknown): number {
  if (err instanceof CommanderError) {
    // Help and version are "errors" to commander; they already printed.
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.help' || err.code === 'commander.version') return 0;
    return err.exitCode === 0 ? 0 : 2;
  }
  if (err instanceof ConfigError) {
    process.stderr.write(`error: ${err.message}\n`);
    return 2;
  }
  if (err instanceof ValidationError || err instanceof UsageError) {
    process.stderr.write(`error: ${err.message}\n`);
    return 2;
  }
  if (err instanceof AppError) {
    process.stderr.write(`error: ${err.message}\n`);
    return 1;
  }
  const message = err instanceof Error ? err.message.split('\n')[0] : String(err);
  process.stderr.write(`error: ${message}\n`);
  return 1;
}

// A one-shot verb that fails asynchronously still ends as one line, never a
// stack trace. The servers and the worker must not die of a stray rejection
// (say, during a database outage): they log it, without its message, and go on.
const LONG_RUNNING = new Set(['dev', 'gateway', 'admin', 'worker']);
process.on('unhandledRejection', (err) => {
  if (LONG_RUNNING.has(process.argv[2] ?? '')) {
    const e = err as { name?: string; code?: string };
    process.stderr.write(`${JSON.stringify({ level: 40, msg: 'unhandled rejection', errType: e?.name, code: e?.code })}\n`);
    return;
  }
  process.exitCode = reportError(err);
  process.exit();
});

await main(process.argv);
