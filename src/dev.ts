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
import { findTemporalCli, type DevServer } from './temporal/devServer';
import { superviseDevServer } from './temporal/devSupervisor';
import { prepareDevDemo } from './dev/demo';
import { devLogFormat } from './dev/logFormat';
import { temporalConnectOptions } from './temporal/connection';
import { productionSchedules } from './temporal/schedules';
import { runTemporalSetup } from './temporal/setup';
import { runHealthProbe } from './temporal/healthProbe';
import { freePort } from './util/ports';

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
 * drain while the server is still there. Each child is stopped by one SIGTERM
 * from here and drains once; a second Ctrl-C exits everything at once.
 */
export async function runDev(config: Config, logger: Logger, print: (line: string) => void): Promise<{ stop: () => Promise<void>; done: Promise<number> }> {
  fs.mkdirSync(config.dataDir, { recursive: true });

  if (await ensureDatabase(config.databaseUrl, config.databaseSsl)) print(`created database ${redactDatabaseUrl(config.databaseUrl)}`);
  const db = createDb({ databaseUrl: config.databaseUrl, poolMax: 1, ssl: config.databaseSsl });
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
    devServer = await superviseDevServer(
      {
        cliPath,
        port: config.temporal.devServerPort,
        uiPort: config.temporal.uiPort,
        dbFile,
        namespace: config.temporal.namespace,
        logFile: path.join(config.dataDir, 'temporal.log'),
        pidFile: path.join(config.dataDir, 'temporal.pid'),
      },
      logger,
      print,
    );
    address = devServer.address;
  }

  // The same connection settings as every process (TLS, API key), at the address dev uses.
  const connectOptions = temporalConnectOptions(config);
  const connection = await Connection.connect({ address, tls: connectOptions.tls, apiKey: connectOptions.apiKey, metadata: connectOptions.metadata });
  const client = new Client({ connection, namespace: config.temporal.namespace });
  // `mixroute temporal setup --create-namespace`, as a developer would run it.
  const setup = await runTemporalSetup(connection, client, config, { createNamespace: true });
  if (setup.namespace.status === 'created') print(`created Temporal namespace ${setup.namespace.name}`);
  if (setup.searchAttributes.added.length) print(`registered search attributes: ${setup.searchAttributes.added.join(', ')}`);
  const s = setup.schedules;
  print(`schedules: ${productionSchedules(config).map((d) => d.scheduleId).join(', ')} (${s.created.length} created, ${s.updated.length} updated)`);

  // Port 0 ("any free port") is picked here, so the lines below can say where /metrics is.
  const metricsHost = config.metrics.host;
  const gatewayMetricsPort = config.metrics.gatewayPort || (await freePort(metricsHost));
  const adminMetricsPort = config.metrics.adminPort || (await freePort(metricsHost));
  const demo = await prepareDevDemo(config, logger, print);
  const childEnv = childProcessEnv({
    ...demo?.env,
    LOG_FORMAT: devLogFormat(config),
    TEMPORAL_ADDRESS: address,
    GATEWAY_METRICS_PORT: String(gatewayMetricsPort),
    ADMIN_METRICS_PORT: String(adminMetricsPort),
  });
  // Keyed by process name: `worker`, `worker-2`, ... (DEV_WORKERS), `gateway`, `admin`.
  const children = new Map<string, ChildProcess>();
  const restarts = new Map<string, number[]>();
  let stopping = false;
  let resolveDone!: (code: number) => void;
  const done = new Promise<number>((r) => (resolveDone = r));

  const startChild = (role: Role, name: string = role) => {
    // Own process group, like the Temporal server: a terminal's Ctrl-C (SIGINT to the
    // whole foreground group) reaches only this supervisor, which then sends each
    // child exactly one SIGTERM. Were the children in the group, they would get the
    // SIGINT and then that SIGTERM, take it as a second stop and exit without
    // draining. They still stop when this process dies: the IPC channel closes.
    const child = spawn(process.execPath, [BIN, role], { env: childEnv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'], detached: true });
    children.set(name, child);
    child.once('exit', (code, signal) => {
      if (stopping) return;
      const now = Date.now();
      const recent = (restarts.get(name) ?? []).filter((t) => now - t < RESTART_WINDOW_MS);
      if (recent.length >= MAX_RESTARTS) {
        logger.error({ role, name, code, signal }, `${name} keeps exiting; stopping everything`);
        void stop(1);
        return;
      }
      recent.push(now);
      restarts.set(name, recent);
      const delay = 500 * 2 ** (recent.length - 1);
      logger.warn({ role, name, code, signal, restartInMs: delay }, `${name} exited; restarting`);
      setTimeout(() => !stopping && startChild(role, name), delay);
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
    await demo?.stop();
    await connection.close();
    if (devServer) {
      print('stopping Temporal dev server...');
      await devServer.stop();
    }
    print('stopped.');
    resolveDone(code);
  }

  // A second Ctrl-C makes the CLI exit at once; the apps still running are told
  // to stop now (a second signal to a stopping app exits it), as they are outside
  // the terminal's process group. (The Temporal server's guard sees dev go.)
  process.once('exit', () => {
    for (const child of children.values()) if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  });

  // More than one worker: they share the task queue, and settlement shards spread over them.
  for (const role of ROLES) {
    const count = role === 'worker' ? config.temporal.devWorkers : 1;
    for (let i = 1; i <= count; i++) startChild(role, i === 1 ? role : `${role}-${i}`);
  }

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
  print(`  metrics      http://${metricsHost}:${gatewayMetricsPort}/metrics (gateway), http://${metricsHost}:${adminMetricsPort}/metrics (admin API)`);
  print(`  worker       task queue ${config.temporal.taskQueue}, ${config.temporal.devWorkers} process${config.temporal.devWorkers === 1 ? '' : 'es'} (health probe ${probe.probeId} round trip ok)`);
  print(`  Temporal     ${address}, namespace ${config.temporal.namespace}${devServer ? '' : ' (external, TEMPORAL_ADDRESS)'}`);
  if (devServer?.uiUrl) print(`  Temporal UI  ${devServer.uiUrl}/namespaces/${config.temporal.namespace}/workflows`);
  print(`  PostgreSQL   ${redactDatabaseUrl(config.databaseUrl)}`);
  await demo?.finish(client).catch((err: unknown) => print(`demo: not set up: ${(err as Error).message}`));
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
