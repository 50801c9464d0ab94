import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Connection, Client } from '@temporalio/client';
import { childProcessEnv, type Config } from './config';
import { ensureDatabase } from './db/database';
import { createDb, redactDatabaseUrl } from './db/knex';
import { migrateLatest } from './db/migrate';
import type { Logger } from './logger';
import { findTemporalCli, startDevServer, type DevServer } from './temporal/devServer';
import { ensureSearchAttributes } from './temporal/namespace';
import { ensureSchedules, productionSchedules } from './temporal/schedules';
import { runHealthProbe } from './temporal/healthProbe';

const BIN = fileURLToPath(new URL('../bin/mixroute.js', import.meta.url));
type Role = 'worker' | 'gateway' | 'admin';
const ROLES: readonly Role[] = ['worker', 'gateway', 'admin'];

/** Restarts allowed per role within RESTART_WINDOW_MS before dev gives up and stops everything. */
const MAX_RESTARTS = 5;
const RESTART_WINDOW_MS = 60_000;

/**
 * `mixroute dev`: everything on one machine in one supervised process tree.
 * Order up: database, Temporal (unless TEMPORAL_ADDRESS), search attributes
 * and schedules, then worker, gateway and admin as child processes. Order
 * down (Ctrl-C): the three apps, then the Temporal server, so the worker can
 * drain while the server is still there.
 */
export async function runDev(config: Config, logger: Logger, print: (line: string) => void): Promise<{ stop: () => Promise<void>; done: Promise<number> }> {
  fs.mkdirSync(config.dataDir, { recursive: true });

  if (await ensureDatabase(config.databaseUrl)) print(`created database ${redactDatabaseUrl(config.databaseUrl)}`);
  const db = createDb({ databaseUrl: config.databaseUrl, poolMax: 1 });
  try {
    const applied = await migrateLatest(db);
    if (applied.length) print(`applied migrations: ${applied.join(', ')}`);
  } finally {
    await db.destroy();
  }

  let devServer: DevServer | undefined;
  let address = config.temporal.address;
  if (!address) {
    const cliPath = findTemporalCli(config.temporal.cliPath);
    const dbFile = path.join(config.dataDir, 'temporal.db');
    print(`starting Temporal dev server (state in ${dbFile}, log in ${path.join(config.dataDir, 'temporal.log')})...`);
    devServer = await startDevServer({
      cliPath,
      port: config.temporal.devServerPort,
      uiPort: config.temporal.uiPort,
      dbFile,
      namespace: config.temporal.namespace,
      logFile: path.join(config.dataDir, 'temporal.log'),
    });
    address = devServer.address;
  }

  const connection = await Connection.connect({ address });
  const client = new Client({ connection, namespace: config.temporal.namespace });
  const addedAttributes = await ensureSearchAttributes(connection, config.temporal.namespace);
  if (addedAttributes.length) print(`registered search attributes: ${addedAttributes.join(', ')}`);
  const declared = productionSchedules(config);
  const schedules = await ensureSchedules(client, declared, config.temporal.taskQueue);
  print(`schedules: ${declared.map((d) => d.scheduleId).join(', ')} (${schedules.created.length} created, ${schedules.updated.length} updated)`);

  const childEnv = childProcessEnv({ TEMPORAL_ADDRESS: address });
  const children = new Map<Role, ChildProcess>();
  const restarts = new Map<Role, number[]>();
  let stopping = false;
  let resolveDone!: (code: number) => void;
  const done = new Promise<number>((r) => (resolveDone = r));

  const startChild = (role: Role) => {
    const child = spawn(process.execPath, [BIN, role], { env: childEnv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    children.set(role, child);
    child.once('exit', (code, signal) => {
      if (stopping) return;
      const now = Date.now();
      const recent = (restarts.get(role) ?? []).filter((t) => now - t < RESTART_WINDOW_MS);
      if (recent.length >= MAX_RESTARTS) {
        logger.error({ role, code, signal }, `${role} keeps exiting; stopping everything`);
        void stop(1);
        return;
      }
      recent.push(now);
      restarts.set(role, recent);
      const delay = 500 * 2 ** (recent.length - 1);
      logger.warn({ role, code, signal, restartInMs: delay }, `${role} exited; restarting`);
      setTimeout(() => !stopping && startChild(role), delay);
    });
  };

  const stopChild = async (child: ChildProcess) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    await exited;
    clearTimeout(timer);
  };

  async function stop(code = 0): Promise<void> {
    if (stopping) return;
    stopping = true;
    print('stopping worker, gateway and admin API...');
    await Promise.all([...children.values()].map(stopChild));
    await connection.close();
    if (devServer) {
      print('stopping Temporal dev server...');
      await devServer.stop();
    }
    print('stopped.');
    resolveDone(code);
  }

  for (const role of ROLES) startChild(role);

  const host = config.host;
  await Promise.all([
    waitForHttp(`http://${host}:${config.gatewayPort}/healthz`, () => stopping),
    waitForHttp(`http://${host}:${config.adminPort}/healthz`, () => stopping),
  ]);
  const probe = await runHealthProbe(client, config.temporal.taskQueue, 120_000);

  print('');
  print('MixRoute dev is up:');
  print(`  gateway      http://${host}:${config.gatewayPort}   (OpenAI-compatible API under /v1)`);
  print(`  admin API    http://${host}:${config.adminPort}   (OpenAPI document at /openapi.json)`);
  print(`  worker       task queue ${config.temporal.taskQueue} (health probe ${probe.probeId} round trip ok)`);
  print(`  Temporal     ${address}, namespace ${config.temporal.namespace}${devServer ? '' : ' (external, TEMPORAL_ADDRESS)'}`);
  if (devServer?.uiUrl) print(`  Temporal UI  ${devServer.uiUrl}/namespaces/${config.temporal.namespace}/workflows`);
  print(`  PostgreSQL   ${redactDatabaseUrl(config.databaseUrl)}`);
  print('Ctrl-C stops everything.');
  return { stop, done };
}

async function waitForHttp(url: string, cancelled: () => boolean, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cancelled()) {
    try {
      const res = await fetch(url);
      if (res.ok) return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`${url} did not answer within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
