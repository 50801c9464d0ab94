import { InvalidArgumentError, type Command } from 'commander';
import { connectTemporal } from '../temporal/client';
import { describeTemporalConnection } from '../temporal/connection';
import { describeSetup, runTemporalSetup } from '../temporal/setup';
import { getConfig, jsonOption, print } from './shared';
import { ConfigError } from '../config';
import { DependencyUnavailableError } from '../errors';

/**
 * `mixroute temporal setup`: the deploy step that prepares the Temporal namespace
 * (search attributes, schedules; the namespace itself with --create-namespace).
 * Idempotent: a second run changes nothing and says so. In production the
 * servers and workers create none of this themselves.
 */
export function registerTemporal(program: Command): void {
  const temporal = program.command('temporal').description('prepare the Temporal namespace MixRoute runs in');
  temporal
    .command('setup')
    .description('register the search attributes and create or update the schedules (idempotent); prints what changed')
    .option('--create-namespace', 'register the namespace when it does not exist (self-hosted clusters and dev; Temporal Cloud namespaces are made in Cloud)')
    .option('--retention-days <days>', 'history retention of a namespace this creates', parseDays, 30)
    .option('--check', 'change nothing: report what is missing and exit 1 if anything is')
    .addOption(jsonOption())
    .action(async (opts: { createNamespace?: boolean; retentionDays: number; check?: boolean; json?: boolean }) => {
      const cfg = getConfig();
      const { connection, client } = await connectTemporal(cfg, 10_000).catch((err: unknown) => {
        if (err instanceof ConfigError) throw err;
        throw new DependencyUnavailableError(`Temporal is unreachable at ${describeTemporalConnection(cfg).address}: ${(err as Error).message}`);
      });
      try {
        const result = await runTemporalSetup(connection, client, cfg, {
          createNamespace: !!opts.createNamespace,
          retentionDays: opts.retentionDays,
          checkOnly: !!opts.check,
        });
        const out = { connection: describeTemporalConnection(cfg), taskQueue: cfg.temporal.taskQueue, ...result };
        print(out, !!opts.json, () =>
          [
            `Temporal ${out.connection.address}, namespace ${out.connection.namespace}${out.connection.tls ? ' (TLS)' : ''}`,
            ...describeSetup(result),
            ...(result.namespace.status === 'missing' && !opts.check ? ['the namespace does not exist: create it (Temporal Cloud, your platform team) or run again with --create-namespace'] : []),
          ].join('\n'),
        );
        if (!result.complete) process.exitCode = 1;
      } finally {
        await connection.close();
      }
    });
}

function parseDays(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 3650) throw new InvalidArgumentError('a whole number of days, 1-3650');
  return n;
}
