import type { Command } from 'commander';

import { providerCredentialEnv, temporalAddress } from '../config';
import { checkPostgresReachable, ensureDatabase } from '../db/database';
import { createDb, redactDatabaseUrl } from '../db/knex';
import { migrateLatest, migrationStatus, PendingMigrationsError } from '../db/migrate';
import { createLogger } from '../logger';
import { stopOnSignals } from '../process/lifecycle';

import { getConfig, print, jsonOption } from './shared';

/** `mixroute dev`, the servers, the worker, `migrate` and `doctor`. */
export function registerSystem(program: Command): void {
  program
    .command('dev')
    .description('run everything locally: Temporal dev server (unless TEMPORAL_ADDRESS), migrations, schedules, worker, gateway, admin API')
    .action(async () => {
      const cfg = getConfig();
      const logger = createLogger({ ...cfg, logFormat: (await import('../dev/logFormat')).devLogFormat(cfg) }, 'dev');
      const { runDev } = await import('../dev');
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
        await checkSchemaCurrent(cfg, role);
        const started =
          role === 'gateway'
            ? await (await import('../gateway/server')).startGatewayServer(cfg, providerCredentialEnv())
            : role === 'admin'
              ? await (await import('../admin/server')).startAdminServer(cfg)
              : await (await import('../worker/runWorker')).startWorker(cfg);
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
    .description('create the database if missing and apply pending migrations (one migrator at a time: others wait, then find nothing to do)')
    .option('--status', 'only show applied and pending migrations')
    .addOption(jsonOption())
    .action(async (opts: { status?: boolean; json?: boolean }) => {
      const cfg = getConfig();
      if (!opts.status) await ensureDatabase(cfg.databaseUrl, cfg.databaseSsl);
      else await checkPostgresReachable(cfg.databaseUrl, cfg.databaseSsl);
      const db = createDb({ databaseUrl: cfg.databaseUrl, poolMax: 1, ssl: cfg.databaseSsl });
      try {
        const applied = opts.status
          ? []
          : await migrateLatest(db, { onWaiting: () => process.stderr.write('waiting for another process that is applying migrations to this database...\n') });
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
        await checkPostgresReachable(cfg.databaseUrl, cfg.databaseSsl);
        const db = createDb({ databaseUrl: cfg.databaseUrl, poolMax: 1, ssl: cfg.databaseSsl });
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
      const { connectTemporal } = await import('../temporal/client');
      try {
        const { connection, client } = await connectTemporal(cfg, 3_000);
        try {
          checks.temporal = { ok: true, detail: `${temporalAddress(cfg)} namespace ${cfg.temporal.namespace}` };
          const { runHealthProbe } = await import('../temporal/healthProbe');
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
}

/**
 * The servers and the worker never migrate (that is `mixroute migrate`, one
 * deploy step under a lock), and code that expects tables or columns the
 * database lacks fails request by request. So with NODE_ENV=production a
 * process refuses to start while this code's migrations are pending (its
 * supervisor retries until the migrate step has run); elsewhere it warns.
 * An unreachable database is not a reason to refuse: the process starts and
 * /readyz reports it, as it always has.
 */
async function checkSchemaCurrent(cfg: ReturnType<typeof getConfig>, role: string): Promise<void> {
  const db = createDb({ databaseUrl: cfg.databaseUrl, poolMax: 1, applicationName: `mixroute-${role}`, ssl: cfg.databaseSsl });
  let pending: string[];
  try {
    pending = (await migrationStatus(db)).pending;
  } catch (err) {
    createLogger(cfg, role).warn({ errType: (err as Error)?.name }, 'could not check for pending migrations at start-up; starting anyway');
    return;
  } finally {
    await db.destroy();
  }
  if (!pending.length) return;
  const message = `${pending.length} migration(s) pending (${pending[0]}${pending.length > 1 ? ', ...' : ''}): run \`mixroute migrate\` before starting the ${role}`;
  if (cfg.dev.production) throw new PendingMigrationsError(message);
  createLogger(cfg, role).warn({ pending }, message);
}
