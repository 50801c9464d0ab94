import { Option, type Command } from 'commander';
import { systemClock } from '../clock';
import { ConfigError, loadConfig, temporalAddress, type Config } from '../config';
import { checkPostgresReachable } from '../db/database';
import { createDb, type Db } from '../db/knex';
import { DependencyUnavailableError } from '../errors';
import { accountsService, type AccountsService } from '../accounts/accounts.service';
import type { Client } from '@temporalio/client';
import { connectTemporal } from '../temporal/client';
import os from 'node:os';

/** What the command groups of `mixroute` share: configuration, output, and the ways to reach the database and Temporal. */

let config: Config;
export function getConfig(): Config {
  config ??= loadConfig();
  return config;
}

export class UsageError extends Error {}

export function print(result: unknown, json: boolean, human?: (r: any) => string): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } else {
    process.stdout.write(`${human ? human(result) : humanize(result)}\n`);
  }
}

export function humanize(value: unknown): string {
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
export async function withDb<T>(fn: (db: Db, cfg: Config) => Promise<T>): Promise<T> {
  const cfg = getConfig();
  await checkPostgresReachable(cfg.databaseUrl, cfg.databaseSsl);
  const db = createDb({ databaseUrl: cfg.databaseUrl, poolMax: 2, ssl: cfg.databaseSsl, applicationName: 'mixroute-cli' });
  try {
    return await fn(db, cfg);
  } finally {
    await db.destroy();
  }
}

/** The one way CLI verbs reach Temporal: a clear line if it is unreachable, always closed after. */
export async function withTemporal<T>(fn: (client: Client, cfg: Config) => Promise<T>): Promise<T> {
  const cfg = getConfig();
  const { connection, client } = await connectTemporal(cfg, 5_000).catch((err: unknown) => {
    // A settings problem (a certificate file) says so itself; only a failed connection is "unreachable".
    if (err instanceof ConfigError) throw err;
    throw new DependencyUnavailableError(`Temporal is unreachable at ${temporalAddress(cfg)}: ${(err as Error).message}`);
  });
  try {
    return await fn(client, cfg);
  } finally {
    await connection.close();
  }
}

export const withStaff = <T>(fn: (ops: AccountsService, db: Db) => Promise<T>): Promise<T> =>
  withDb((db, cfg) => fn(accountsService({ db, clock: systemClock, config: cfg }), db));

/** Drops undefined values so zod sees only the flags that were given. */
export function defined(obj: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined));
}

export const jsonOption = () => new Option('--json', 'print machine-readable JSON');


export function staffCommand(parent: Command, name: string, description: string): Command {
  return parent.command(name).description(description).addOption(jsonOption());
}

/** Who is acting, for the ledger's audit columns. */
export const cliActor = () => `cli:${os.userInfo().username}`;
