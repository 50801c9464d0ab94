import { Command, CommanderError } from 'commander';

import { ConfigError } from './config';
import { AppError, ValidationError } from './errors';
import { registerAccounts } from './cli/accounts';
import { registerDemo } from './cli/demo';
import { registerInvoices } from './cli/invoices';
import { registerLedger } from './cli/ledger';
import { registerPrivacy } from './cli/privacy';
import { registerProcessorMode } from './cli/processorMode';
import { registerPolicy } from './cli/policy';
import { registerPageViews } from './cli/pageViews';
import { registerReconciliation } from './cli/reconciliation';
import { registerRegister } from './cli/register';
import { registerRetention } from './cli/retention';
import { registerRouting } from './cli/routing';
import { registerSettlement } from './cli/settlement';
import { registerStaffTokens, registerStaffUsers } from './cli/staff';
import { registerUserPasswords } from './cli/users';
import { registerSystem } from './cli/system';
import { registerTemporal } from './cli/temporal';
import { registerWebhooks } from './cli/webhooks';
import { UsageError } from './cli/shared';

/**
 * `mixroute <verb>`: the servers, the worker, dev mode, migrations and every
 * staff action. Staff verbs talk to PostgreSQL directly (an operator on the
 * box needs no running server). Every verb takes --json for scripts. Errors are
 * one line on stderr and a non-zero exit: 1 for a refused or failed action,
 * 2 for a usage mistake.
 *
 * Each command group lives in src/cli/<group>.ts and registers itself here;
 * what the groups share is in src/cli/shared.ts.
 */

const program = new Command('mixroute')
  .description('MixRoute backend: gateway, worker, admin API, and staff actions')
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride();

// Registration order is the order of `mixroute --help`.
registerSystem(program);
registerTemporal(program);
registerAccounts(program);
registerUserPasswords(program);
registerRouting(program);
registerStaffTokens(program);
registerLedger(program);
registerInvoices(program);
registerReconciliation(program);
registerPrivacy(program);
registerRetention(program);
registerRegister(program);
registerStaffUsers(program);
registerDemo(program);
registerSettlement(program);
registerWebhooks(program);
registerProcessorMode(program);
registerPolicy(program);
registerPageViews(program);

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
