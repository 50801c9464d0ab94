/**
 * A real two-node Temporal cluster over TLS with MixRoute on it, on this machine:
 * `npm run cluster` (foreground until Ctrl-C), or startCluster() from a test.
 *
 *   certificates   a CA, the frontends' server certificate, an internode one and
 *                  MixRoute's client certificate (mTLS), under <dataDir>/tls
 *   PostgreSQL     <prefix>_temporal and <prefix>_temporal_visibility (schemas by
 *                  temporal-sql-tool), <prefix> for MixRoute
 *   Temporal       two `temporal-server` processes, each running all four
 *                  services, membership on loopback, frontends requiring client
 *                  certificates, internode traffic on mutual TLS
 *   Web UI         the Temporal UI server, connected with the client certificate
 *   MixRoute       `mixroute migrate` and `mixroute temporal setup`, then two
 *                  workers, two gateways and the admin server (from dist/ with
 *                  NODE_ENV=production when `npm run build` exists), each pointed
 *                  at one node through Temporal's environment configuration
 *
 * The handle can SIGKILL and restart any one process (the fault test's tool).
 * Nothing restarts by itself: what is killed stays down until restart().
 * docs/deployment.md#running-a-two-node-cluster-here describes it for operators.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { Client, Connection, isGrpcServiceError } from '@temporalio/client';
import { msToTs } from '@temporalio/common';
import protos from '@temporalio/proto';
import pg from 'pg';
import { ensureDatabase } from '../../src/db/database';
import { runHealthProbe } from '../../src/temporal/healthProbe';
import { ensureClusterCerts } from './certs';
import { dynamicConfigYaml, nodePorts, temporalNodeConfig, uiServerConfig, type NodePorts, type PgTarget } from './temporalConfig';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const GUARD = path.join(ROOT, 'src/dev/guard.mjs');
const BIN = path.join(ROOT, 'bin/mixroute.js');

export type Component = 'temporal' | 'gateway' | 'worker' | 'admin' | 'ui';

export interface ClusterOptions {
  /** Where certificates, configs, logs and state.json go (default .data/cluster). */
  dataDir?: string;
  /** First port of the cluster's range of 500 (default 17200; see ports in docs/deployment.md). */
  basePort?: number;
  /** MixRoute's database; Temporal's are <prefix>_temporal and <prefix>_temporal_visibility (default mixroute_cluster). */
  databasePrefix?: string;
  /** Any database URL of the PostgreSQL server to use (default DATABASE_URL, else postgres://postgres@127.0.0.1:5432/postgres). */
  postgresUrl?: string;
  /** Drop the three databases first (a test's clean slate). */
  fresh?: boolean;
  /** Drop them again in stop(). */
  dropOnStop?: boolean;
  namespace?: string;
  taskQueue?: string;
  gateways?: number;
  workers?: number;
  /** Start the Web UI (default true). */
  ui?: boolean;
  /** MixRoute from `dist` (npm run build; built when missing or older than the sources), or from `sources` through tsx. Default: dist when package.json has a build script. */
  mixroute?: 'dist' | 'sources';
  /** Start Temporal (and the Web UI) only, no MixRoute processes. */
  temporalOnly?: boolean;
  /** Extra environment for the MixRoute processes (provider keys, UPSTREAM_ALLOWED_HOSTS, intervals). */
  env?: Record<string, string>;
  /** History shards, fixed for the life of the Temporal databases (default 4). */
  numHistoryShards?: number;
  /** Progress lines (default: stderr). */
  log?: (line: string) => void;
}

export interface ClusterState {
  temporal: { node: number; frontend: string; pid: number | null; log: string }[];
  gateways: { url: string; pid: number | null; instanceId: string; temporalAddress: string; metricsUrl: string; log: string }[];
  workers: { pid: number | null; temporalAddress: string; log: string }[];
  admin: { url: string; pid: number | null; temporalAddress: string; metricsUrl: string; log: string };
  ui: { url: string; pid: number | null } | null;
  tls: { ca: string; clientCert: string; clientKey: string; serverName: string };
  databaseUrl: string;
  temporalDatabases: { temporal: string; visibility: string };
  namespace: string;
  taskQueue: string;
  /** How MixRoute runs: the production build, or the sources through tsx. */
  mixroute: 'dist' | 'sources';
  dataDir: string;
  startedAt: string;
}

export interface ClusterHandle {
  readonly state: ClusterState;
  /** Sends `signal` (default SIGKILL) to one process (index into the state's array; 0 for admin and ui) and waits until it is gone. */
  kill(component: Component, index?: number, signal?: NodeJS.Signals): Promise<void>;
  /** Starts a process that is down again, with the same ports and settings, and waits until it serves. */
  restart(component: Component, index?: number): Promise<void>;
  /** Stops everything (apps first, Temporal last) and removes state.json. */
  stop(): Promise<void>;
  /** Environment for a `mixroute` command against the cluster (Temporal node `node`, 1 or 2). */
  mixrouteEnv(node?: number): Record<string, string>;
  /** Connect options for a Temporal client of the cluster (the SDK's Connection.connect). */
  temporalConnectOptions(node?: number): Parameters<typeof Connection.connect>[0];
  /** Resolves when a process exits that was not stopped through the handle. */
  readonly unexpectedExit: Promise<{ name: string; code: number | null; signal: NodeJS.Signals | null }>;
}

interface Proc {
  name: string;
  component: Component;
  index: number;
  log: string;
  /** What we spawned: the guard for the Go servers, the node process for MixRoute. */
  child?: ChildProcess;
  /** The process that serves (the Go server under its guard). */
  pid?: number;
  stopping?: boolean;
  start(): Promise<void>;
  ready(): Promise<void>;
}

const SETTINGS_TO_DROP = /^(TEMPORAL_(ADDRESS|NAMESPACE|API_KEY|TLS.*|PROFILE|CONFIG_FILE|DISABLE_.*|GRPC_META_.*|CODEC_.*|TASK_QUEUE)|DATABASE_(URL|SSL_.*|POOL_MAX)|NODE_ENV|GATEWAY_.*|ADMIN_.*|DATA_DIR|HOST|METRICS_HOST)$/;

export async function startCluster(opts: ClusterOptions = {}): Promise<ClusterHandle> {
  const say = opts.log ?? ((line: string) => process.stderr.write(`[cluster] ${line}\n`));
  const dataDir = path.resolve(ROOT, opts.dataDir ?? '.data/cluster');
  const basePort = opts.basePort ?? 17200;
  const prefix = opts.databasePrefix ?? 'mixroute_cluster';
  if (!/^[a-z_][a-z0-9_]{0,40}$/.test(prefix)) throw new Error(`databasePrefix must be a lower-case identifier: ${prefix}`);
  const namespace = opts.namespace ?? 'default';
  const taskQueue = opts.taskQueue ?? 'mixroute';
  const gatewayCount = opts.gateways ?? 2;
  const workerCount = opts.workers ?? 2;
  const serverName = 'temporal.mixroute.local';
  const logDir = path.join(dataDir, 'logs');
  fs.mkdirSync(logDir, { recursive: true });

  const ports = {
    nodes: [nodePorts(basePort, 1), nodePorts(basePort, 2)] as NodePorts[],
    ui: basePort + 233,
    gateway: (i: number) => basePort + 280 + i,
    gatewayMetrics: (i: number) => basePort + 260 + i,
    admin: basePort + 290,
    adminMetrics: basePort + 291,
  };
  await assertPortsFree([
    ...ports.nodes.flatMap((p) => [p.frontend, p.frontendHttp, p.history, p.matching, p.worker, ...Object.values(p.membership), p.metrics]),
    ...(opts.ui === false ? [] : [ports.ui]),
    ...Array.from({ length: gatewayCount }, (_, i) => [ports.gateway(i), ports.gatewayMetrics(i)]).flat(),
    ports.admin,
    ports.adminMetrics,
  ]);

  // 1. Binaries (built once into the cache outside the repo) and certificates.
  say('finding or building the Temporal server (scripts/find-temporal-server.sh)...');
  const serverDir = await findTemporalServer();
  const certs = await ensureClusterCerts(path.join(dataDir, 'tls'), serverName);
  say(`certificates in ${certs.dir} (CA ca.pem, server name ${serverName})`);

  // 2. Databases and Temporal's schemas.
  const postgresUrl = opts.postgresUrl ?? process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const dbUrl = (name: string) => {
    const u = new URL(postgresUrl);
    u.pathname = `/${name}`;
    u.search = '';
    return u.toString();
  };
  const databases = { mixroute: prefix, temporal: `${prefix}_temporal`, visibility: `${prefix}_temporal_visibility` };
  if (opts.fresh) await dropDatabases(dbUrl('postgres'), Object.values(databases));
  for (const name of Object.values(databases)) await ensureDatabase(dbUrl(name));
  const pgTarget = pgTargetOf(postgresUrl);
  say(`setting up Temporal's schemas in ${databases.temporal} and ${databases.visibility} (temporal-sql-tool)...`);
  await setUpTemporalSchema(serverDir, pgTarget, databases.temporal, 'temporal');
  await setUpTemporalSchema(serverDir, pgTarget, databases.visibility, 'visibility');

  // 3. Configuration of both nodes.
  const temporalDir = path.join(dataDir, 'temporal');
  fs.mkdirSync(path.join(temporalDir, 'config'), { recursive: true });
  const dynamicConfigFile = path.join(temporalDir, 'dynamicconfig.yaml');
  fs.writeFileSync(dynamicConfigFile, dynamicConfigYaml());
  for (const [i, p] of ports.nodes.entries()) {
    const config = temporalNodeConfig({
      node: i + 1,
      ports: p,
      pg: pgTarget,
      databases,
      certs,
      numHistoryShards: opts.numHistoryShards ?? 4,
      dynamicConfigFile,
    });
    // JSON is YAML; the file holds the database password when there is one: owner-only.
    fs.writeFileSync(path.join(temporalDir, 'config', `node${i + 1}.yaml`), `# Written by scripts/cluster/cluster.ts: Temporal node ${i + 1}.\n${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
  }

  const frontends = ports.nodes.map((p) => `127.0.0.1:${p.frontend}`);
  // Temporal's environment configuration file, for the Temporal CLI and any SDK client:
  // TEMPORAL_CONFIG_FILE=<dataDir>/temporal.toml TEMPORAL_PROFILE=cluster temporal workflow list
  fs.writeFileSync(
    path.join(dataDir, 'temporal.toml'),
    frontends
      .map((address, i) =>
        [
          `[profile.${i === 0 ? 'cluster' : `cluster-node${i + 1}`}]`,
          `address = "${address}"`,
          `namespace = "${namespace}"`,
          '',
          `[profile.${i === 0 ? 'cluster' : `cluster-node${i + 1}`}.tls]`,
          `server_ca_cert_path = "${certs.ca}"`,
          `client_cert_path = "${certs.clientCert}"`,
          `client_key_path = "${certs.clientKey}"`,
          `server_name = "${serverName}"`,
          '',
        ].join('\n'),
      )
      .join('\n'),
  );
  const tlsOptions = () => ({
    serverNameOverride: serverName,
    serverRootCACertificate: fs.readFileSync(certs.ca),
    clientCertPair: { crt: fs.readFileSync(certs.clientCert), key: fs.readFileSync(certs.clientKey) },
  });
  const connectOptions = (node = 1) => ({ address: frontends[node - 1]!, tls: tlsOptions(), connectTimeout: 5_000 });

  const mixroute: 'dist' | 'sources' = opts.mixroute ?? (hasBuildScript() ? 'dist' : 'sources');
  const databaseUrl = dbUrl(databases.mixroute);
  const mixrouteDataDir = path.join(dataDir, 'mixroute');
  const mixrouteEnv = (node = 1): Record<string, string> => {
    const base: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !SETTINGS_TO_DROP.test(k)) base[k] = v;
    return {
      ...base,
      ...(mixroute === 'dist' ? { NODE_ENV: 'production' } : {}),
      DATABASE_URL: databaseUrl,
      DATABASE_POOL_MAX: '5',
      TEMPORAL_ADDRESS: frontends[node - 1]!,
      TEMPORAL_NAMESPACE: namespace,
      TEMPORAL_TASK_QUEUE: taskQueue,
      TEMPORAL_TLS: 'true',
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: certs.ca,
      TEMPORAL_TLS_CLIENT_CERT_PATH: certs.clientCert,
      TEMPORAL_TLS_CLIENT_KEY_PATH: certs.clientKey,
      TEMPORAL_TLS_SERVER_NAME: serverName,
      // One data dir for all: the admin server and the workers share the keys made under it.
      DATA_DIR: mixrouteDataDir,
      HOST: '127.0.0.1',
      LOG_FORMAT: 'json',
      ...opts.env,
    };
  };

  const procs: Proc[] = [];
  let stopping = false;
  let reportExit!: (e: { name: string; code: number | null; signal: NodeJS.Signals | null }) => void;
  const unexpectedExit = new Promise<{ name: string; code: number | null; signal: NodeJS.Signals | null }>((r) => (reportExit = r));

  const spawnLogged = (proc: Proc, command: string, args: string[], env: NodeJS.ProcessEnv, guarded: boolean): ChildProcess => {
    const fd = fs.openSync(proc.log, 'a');
    fs.writeSync(fd, `\n=== ${new Date().toISOString()} starting ${proc.name} ===\n`);
    // Own process group: a terminal's Ctrl-C reaches only this supervisor, which stops each
    // child once. The IPC channel makes a child (or the guard of a Go server) stop when this
    // process dies, even by SIGKILL, so no orphan keeps a port.
    const child = guarded
      ? spawn(process.execPath, [GUARD, '--grace-ms', '15000', '--', command, ...args], { env, stdio: ['ignore', fd, fd, 'ipc'], detached: true })
      : spawn(command, args, { env, stdio: ['ignore', fd, fd, 'ipc'], detached: true, cwd: ROOT });
    fs.closeSync(fd);
    proc.child = child;
    proc.stopping = false;
    proc.pid = guarded ? undefined : child.pid;
    if (guarded) {
      child.on('message', (m: { pid?: number }) => {
        if (typeof m?.pid === 'number') {
          proc.pid = m.pid;
          writeState();
        }
      });
    }
    child.once('exit', (code, signal) => {
      if (proc.child === child) {
        proc.child = undefined;
        proc.pid = undefined;
      }
      if (!proc.stopping && !stopping) {
        say(`${proc.name} exited (${signal ?? `code ${code}`}); its log: ${proc.log}`);
        reportExit({ name: proc.name, code, signal });
      }
      writeState();
    });
    return child;
  };

  const waitForPid = async (proc: Proc) => {
    await until(() => proc.pid !== undefined || !proc.child, 10_000, `${proc.name} to start`);
    if (!proc.child) throw new Error(`${proc.name} exited at start; its log: ${proc.log}`);
  };

  // 4. Temporal nodes.
  for (const [i] of ports.nodes.entries()) {
    const node = i + 1;
    const proc: Proc = {
      name: `temporal-${node}`,
      component: 'temporal',
      index: i,
      log: path.join(logDir, `temporal-${node}.log`),
      async start() {
        spawnLogged(
          proc,
          path.join(serverDir, 'temporal-server'),
          ['--root', temporalDir, '--config', 'config', '--env', `node${node}`, '--allow-no-auth', 'start'],
          { ...process.env },
          true,
        );
        await waitForPid(proc);
      },
      async ready() {
        await until(() => frontendAnswers(connectOptions(node), namespace, proc), 180_000, `Temporal node ${node} (${frontends[i]}) to answer over TLS`);
      },
    };
    procs.push(proc);
  }

  const uiProc: Proc | undefined =
    opts.ui === false
      ? undefined
      : {
          name: 'ui',
          component: 'ui',
          index: 0,
          log: path.join(logDir, 'ui.log'),
          async start() {
            const uiDir = path.join(dataDir, 'ui');
            fs.mkdirSync(path.join(uiDir, 'config'), { recursive: true });
            fs.writeFileSync(path.join(uiDir, 'config', 'cluster.yaml'), `${JSON.stringify(uiServerConfig({ frontend: frontends[0]!, port: ports.ui, namespace, certs }), null, 2)}\n`);
            spawnLogged(uiProc!, path.join(serverDir, 'temporal-ui-server'), ['--root', uiDir, '--config', 'config', '--env', 'cluster', 'start'], { ...process.env }, true);
            await waitForPid(uiProc!);
          },
          async ready() {
            await until(() => httpOk(`http://127.0.0.1:${ports.ui}/api/v1/namespaces/${namespace}`, uiProc!), 60_000, 'the Temporal Web UI');
          },
        };
  if (uiProc) procs.push(uiProc);

  const mixrouteProc = (component: 'gateway' | 'worker' | 'admin', index: number, node: number, env: Record<string, string>, readyUrl?: string): Proc => {
    const name = component === 'admin' ? 'admin' : `${component}-${index + 1}`;
    const proc: Proc = {
      name,
      component,
      index,
      log: path.join(logDir, `${name}.log`),
      async start() {
        spawnLogged(proc, process.execPath, [BIN, component], { ...mixrouteEnv(node), ...env }, false);
        await waitForPid(proc);
      },
      async ready() {
        if (readyUrl) await until(() => httpOk(readyUrl, proc), 120_000, `${name} (${readyUrl})`);
        else await until(() => workerPolls(connectOptions(node), namespace, taskQueue, proc), 120_000, `${name} to poll task queue ${taskQueue}`);
      },
    };
    procs.push(proc);
    return proc;
  };
  const workers = Array.from({ length: opts.temporalOnly ? 0 : workerCount }, (_, i) => mixrouteProc('worker', i, (i % 2) + 1, {}));
  const gateways = Array.from({ length: opts.temporalOnly ? 0 : gatewayCount }, (_, i) =>
    mixrouteProc('gateway', i, (i % 2) + 1, { GATEWAY_PORT: String(ports.gateway(i)), GATEWAY_METRICS_PORT: String(ports.gatewayMetrics(i)), GATEWAY_INSTANCE_ID: `gateway-${i + 1}` }, `http://127.0.0.1:${ports.gateway(i)}/readyz`),
  );
  const admin = mixrouteProc('admin', 0, 1, { ADMIN_PORT: String(ports.admin), ADMIN_METRICS_PORT: String(ports.adminMetrics) }, `http://127.0.0.1:${ports.admin}/readyz`);

  const find = (component: Component, index = 0): Proc => {
    const p = procs.find((x) => x.component === component && x.index === index);
    if (!p) throw new Error(`no ${component} ${index} in this cluster`);
    return p;
  };
  const pidOf = (p: Proc | undefined) => p?.pid ?? null;

  function writeState(): void {
    state.temporal.forEach((t, i) => (t.pid = pidOf(find('temporal', i))));
    state.gateways.forEach((g, i) => (g.pid = pidOf(gateways[i])));
    state.workers.forEach((w, i) => (w.pid = pidOf(workers[i])));
    state.admin.pid = pidOf(admin);
    if (state.ui) state.ui.pid = pidOf(uiProc);
    if (stopping) return;
    fs.writeFileSync(path.join(dataDir, 'state.json'), `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  }

  // Declared before any process starts; writeState (hoisted) only runs from then on.
  const state: ClusterState = {
    temporal: ports.nodes.map((p, i) => ({ node: i + 1, frontend: frontends[i]!, pid: null, log: path.join(logDir, `temporal-${i + 1}.log`) })),
    gateways: gateways.map((g, i) => ({ url: `http://127.0.0.1:${ports.gateway(i)}`, pid: null, instanceId: `gateway-${i + 1}`, temporalAddress: frontends[i % 2]!, metricsUrl: `http://127.0.0.1:${ports.gatewayMetrics(i)}/metrics`, log: g.log })),
    workers: workers.map((w, i) => ({ pid: null, temporalAddress: frontends[i % 2]!, log: w.log })),
    admin: { url: `http://127.0.0.1:${ports.admin}`, pid: null, temporalAddress: frontends[0]!, metricsUrl: `http://127.0.0.1:${ports.adminMetrics}/metrics`, log: admin.log },
    ui: uiProc ? { url: `http://127.0.0.1:${ports.ui}`, pid: null } : null,
    tls: { ca: certs.ca, clientCert: certs.clientCert, clientKey: certs.clientKey, serverName },
    databaseUrl,
    temporalDatabases: { temporal: databases.temporal, visibility: databases.visibility },
    namespace,
    taskQueue,
    mixroute,
    dataDir,
    startedAt: new Date().toISOString(),
  };

  const stopProc = async (p: Proc, signal: NodeJS.Signals = 'SIGTERM') => {
    const child = p.child;
    if (!child) return;
    p.stopping = true;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    if (signal === 'SIGKILL' && p.pid) {
      // The serving process itself; a guard follows its server out the same way.
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    } else {
      child.kill(signal);
    }
    const force = setTimeout(() => child.kill('SIGKILL'), 30_000);
    await exited;
    clearTimeout(force);
  };

  async function stop(): Promise<void> {
    if (stopping) return;
    say('stopping gateways and admin server, then workers, then the Web UI and Temporal...');
    for (const p of procs) p.stopping = true;
    await Promise.all([...gateways, admin].map((p) => stopProc(p)));
    await Promise.all(workers.map((p) => stopProc(p)));
    stopping = true;
    await Promise.all(procs.filter((p) => p.component === 'ui' || p.component === 'temporal').map((p) => stopProc(p)));
    fs.rmSync(path.join(dataDir, 'state.json'), { force: true });
    if (opts.dropOnStop) await dropDatabases(dbUrl('postgres'), Object.values(databases));
    say('stopped.');
  }

  try {
    say(`starting Temporal node 1 (${frontends[0]}) and node 2 (${frontends[1]})...`);
    const [node1, node2] = [find('temporal', 0), find('temporal', 1)];
    // Node 1 first: it initializes the cluster metadata; node 2 then joins its ring.
    await node1.start();
    await until(() => frontendAnswers(connectOptions(1), undefined, node1), 180_000, `Temporal node 1 (${frontends[0]}) to answer over TLS`);
    await node2.start();
    await until(() => frontendAnswers(connectOptions(2), undefined, node2), 180_000, `Temporal node 2 (${frontends[1]}) to answer over TLS`);
    await registerNamespace(connectOptions(1), namespace, node1);
    await Promise.all([node1.ready(), node2.ready()]);
    writeState();
    say(`Temporal cluster up: namespace ${namespace} on both nodes`);

    if (uiProc) {
      await uiProc.start();
      await uiProc.ready();
    }

    if (opts.temporalOnly) return handle();
    if (mixroute === 'dist') await ensureBuild(say);
    else say('MixRoute runs from the sources (tsx): no `npm run build` in package.json yet');
    say(`mixroute migrate (${databases.mixroute})...`);
    await runMixroute(['migrate'], mixrouteEnv(1));
    say('mixroute temporal setup (search attributes, schedules)...');
    await temporalSetup(mixrouteEnv(1), connectOptions(1), say);

    say(`starting ${workerCount} workers, ${gatewayCount} gateways and the admin server...`);
    for (const p of [...workers, ...gateways, admin]) await p.start();
    writeState();
    await Promise.all([...workers, ...gateways, admin].map((p) => p.ready()));
    // A workflow round trip through the cluster: a worker took it and reached PostgreSQL.
    const connection = await Connection.connect(connectOptions(1));
    try {
      await runHealthProbe(new Client({ connection, namespace }), taskQueue, 120_000);
    } finally {
      await connection.close();
    }
    writeState();
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }

  return handle();

  function handle(): ClusterHandle {
    return {
    state,
    async kill(component, index = 0, signal = 'SIGKILL') {
      const p = find(component, index);
      if (!p.child) throw new Error(`${p.name} is not running`);
      await stopProc(p, signal);
      writeState();
    },
    async restart(component, index = 0) {
      const p = find(component, index);
      if (p.child) throw new Error(`${p.name} is running: kill it first`);
      await p.start();
      writeState();
      await p.ready();
    },
    stop,
    mixrouteEnv,
    temporalConnectOptions: connectOptions,
    unexpectedExit,
    };
  }
}

// ---------------------------------------------------------------------------

async function findTemporalServer(): Promise<string> {
  return new Promise((resolve, reject) => {
    // Progress (a first build takes minutes) goes to our stderr; stdout is the directory.
    const child = spawn('bash', [path.join(ROOT, 'scripts/find-temporal-server.sh')], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`scripts/find-temporal-server.sh failed (exit ${code})`))));
  });
}

function pgTargetOf(url: string): PgTarget {
  const u = new URL(url);
  return { host: u.hostname || '127.0.0.1', port: Number(u.port || 5432), user: decodeURIComponent(u.username || 'postgres'), password: decodeURIComponent(u.password) };
}

async function dropDatabases(adminUrl: string, names: string[]): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    for (const name of names) await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  } finally {
    await client.end();
  }
}

/** The server's own procedure (its docker auto-setup does the same): version table, then every versioned step not yet applied. */
async function setUpTemporalSchema(serverDir: string, target: PgTarget, database: string, kind: 'temporal' | 'visibility'): Promise<void> {
  const tool = path.join(serverDir, 'temporal-sql-tool');
  const common = ['--plugin', 'postgres12', '--ep', target.host, '-p', String(target.port), '-u', target.user, '--db', database];
  // The password goes by environment, not argv (which `ps` shows).
  const env = { ...process.env, SQL_PASSWORD: target.password };
  const versioned = path.join(serverDir, 'schema', 'postgresql', 'v12', kind, 'versioned');
  for (const args of [
    [...common, 'setup-schema', '-v', '0.0'],
    [...common, 'update-schema', '-d', versioned],
  ]) {
    try {
      await run(tool, args, { env });
    } catch (err) {
      const e = err as { stderr?: string; stdout?: string };
      throw new Error(`temporal-sql-tool ${args[args.indexOf('--db') + 2]} on ${database} failed: ${(e.stderr || e.stdout || String(err)).trim().split('\n').slice(-5).join('\n')}`);
    }
  }
}

function hasBuildScript(): boolean {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts?: Record<string, string> };
  return !!pkg.scripts?.build;
}

/** Newest modification time under the folders the build compiles. */
function newestSource(): number {
  let newest = 0;
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else newest = Math.max(newest, fs.statSync(p).mtimeMs);
    }
  };
  for (const d of ['src', 'workflows', 'activities', 'migrations']) if (fs.existsSync(path.join(ROOT, d))) walk(path.join(ROOT, d));
  for (const f of ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json']) if (fs.existsSync(path.join(ROOT, f))) newest = Math.max(newest, fs.statSync(path.join(ROOT, f)).mtimeMs);
  return newest;
}

/** `npm run build` when dist/ is missing or older than the sources. */
async function ensureBuild(say: (line: string) => void): Promise<void> {
  const marks = ['dist/src/cli.js', 'dist/workflow-bundle.js'].map((f) => path.join(ROOT, f));
  const built = marks.every((f) => fs.existsSync(f)) ? Math.min(...marks.map((f) => fs.statSync(f).mtimeMs)) : 0;
  if (built > newestSource()) {
    say('MixRoute from the production build in dist/ (up to date)');
    return;
  }
  say('npm run build (dist/ missing or older than the sources)...');
  await new Promise<void>((resolve, reject) => {
    const child = spawn('npm', ['run', '-s', 'build'], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`npm run build failed (exit ${code})`))));
  });
}

async function runMixroute(args: string[], env: Record<string, string>): Promise<void> {
  try {
    await run(process.execPath, [BIN, ...args], { env, cwd: ROOT, maxBuffer: 16 * 1024 * 1024 });
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string };
    throw new Error(`mixroute ${args.join(' ')} failed: ${(e.stderr || e.stdout || String(err)).trim().split('\n').slice(-8).join('\n')}`);
  }
}

/**
 * `mixroute temporal setup`. Until that command exists in this checkout, the same
 * set-up through its module (src/temporal/setup.ts), so the cluster can start.
 */
async function temporalSetup(env: Record<string, string>, options: Parameters<typeof Connection.connect>[0], say: (line: string) => void): Promise<void> {
  try {
    await runMixroute(['temporal', 'setup'], env);
    return;
  } catch (err) {
    if (!/unknown command 'temporal'/.test((err as Error).message)) throw err;
  }
  say('(this checkout has no `mixroute temporal setup` yet: running src/temporal/setup.ts directly)');
  const { loadConfig } = await import('../../src/config');
  const { runTemporalSetup } = await import('../../src/temporal/setup');
  const connection = await Connection.connect(options);
  try {
    const config = loadConfig(env);
    await runTemporalSetup(connection, new Client({ connection, namespace: config.temporal.namespace }), config);
  } finally {
    await connection.close();
  }
}

/** Thrown by a readiness check to stop waiting (the process exited). */
class GaveUp extends Error {}

async function until(check: () => Promise<boolean> | boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      if (await check()) return;
    } catch (err) {
      if (err instanceof GaveUp) throw new Error(`waiting for ${what}: ${err.message}`);
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`);
    await sleep(250);
  }
}

function assertAlive(proc: Proc): void {
  if (!proc.child) throw new GaveUp(`${proc.name} exited; its log: ${proc.log}`);
}

async function frontendAnswers(options: Parameters<typeof Connection.connect>[0], namespace: string | undefined, proc: Proc): Promise<boolean> {
  assertAlive(proc);
  const connection = await Connection.connect(options);
  try {
    await connection.withDeadline(Date.now() + 5_000, () => connection.workflowService.getSystemInfo({}));
    if (namespace) await connection.withDeadline(Date.now() + 5_000, () => connection.workflowService.describeNamespace({ namespace }));
    return true;
  } finally {
    await connection.close();
  }
}

/** The cluster's namespace (its set-up, as a platform team would make it; MixRoute's processes create none in production). */
async function registerNamespace(options: Parameters<typeof Connection.connect>[0], namespace: string, proc: Proc): Promise<void> {
  await until(
    async () => {
      assertAlive(proc);
      const connection = await Connection.connect(options);
      try {
        await connection.workflowService.registerNamespace({ namespace, workflowExecutionRetentionPeriod: msToTs('3 days') });
        return true;
      } catch (err) {
        if (isGrpcServiceError(err) && err.code === 6 /* ALREADY_EXISTS */) return true;
        throw err;
      } finally {
        await connection.close();
      }
    },
    120_000,
    `namespace ${namespace} to be registered`,
  );
}

async function httpOk(url: string, proc: Proc): Promise<boolean> {
  assertAlive(proc);
  const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  await res.body?.cancel();
  return res.ok;
}

/** The worker's default identity is `<pid>@<host>`: this one polls once its pid is among the pollers. */
async function workerPolls(options: Parameters<typeof Connection.connect>[0], namespace: string, taskQueue: string, proc: Proc): Promise<boolean> {
  assertAlive(proc);
  const connection = await Connection.connect(options);
  try {
    const r = await connection.workflowService.describeTaskQueue({
      namespace,
      taskQueue: { name: taskQueue, kind: protos.temporal.api.enums.v1.TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
      taskQueueType: protos.temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    });
    return (r.pollers ?? []).some((p) => p.identity?.startsWith(`${proc.pid}@`));
  } finally {
    await connection.close();
  }
}

async function assertPortsFree(ports: number[]): Promise<void> {
  const busy: number[] = [];
  for (const port of ports) {
    const free = await new Promise<boolean>((resolve) => {
      const s = net.createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (!free) busy.push(port);
  }
  if (busy.length) {
    throw new Error(`ports in use on 127.0.0.1: ${busy.join(', ')}; is a cluster from an earlier run still up (its state.json names the pids)? Or choose another basePort`);
  }
}

// ---------------------------------------------------------------------------
// `npm run cluster`: in the foreground until Ctrl-C.

async function main(): Promise<void> {
  const say = (line: string) => process.stdout.write(`[cluster] ${line}\n`);
  const state: { handle?: ClusterHandle; interrupted: boolean } = { interrupted: false };
  const onSignal = () => {
    if (state.interrupted) process.exit(130);
    state.interrupted = true;
    if (state.handle) void state.handle.stop().then(() => process.exit(0));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // --fresh: drop the cluster's three databases first (Temporal's history and MixRoute's data).
  const handle = await startCluster({ log: say, fresh: process.argv.includes('--fresh'), basePort: process.env.CLUSTER_BASE_PORT ? Number(process.env.CLUSTER_BASE_PORT) : undefined });
  state.handle = handle;
  if (state.interrupted) {
    await handle.stop();
    process.exit(0);
  }
  const s = handle.state;
  say('');
  say(`MixRoute on a two-node Temporal cluster over TLS is up (MixRoute from ${s.mixroute === 'dist' ? 'the production build in dist/' : 'the sources'}):`);
  s.gateways.forEach((g, i) => say(`  gateway ${i + 1}    ${g.url}   (Temporal ${g.temporalAddress})`));
  say(`  admin        ${s.admin.url}   (console ${s.admin.url}/console)`);
  s.workers.forEach((w, i) => say(`  worker ${i + 1}     pid ${w.pid}, task queue ${s.taskQueue} (Temporal ${w.temporalAddress})`));
  s.temporal.forEach((t) => say(`  Temporal ${t.node}   ${t.frontend}   (TLS, server name ${s.tls.serverName}, client certificate required)`));
  say(`  Temporal UI  ${s.ui ? `${s.ui.url}/namespaces/${s.namespace}/workflows` : '(not started)'}`);
  say(`  PostgreSQL   MixRoute ${s.databaseUrl.replace(/\/\/[^@]*@/, '//…@')}; Temporal ${s.temporalDatabases.temporal}, ${s.temporalDatabases.visibility}`);
  say(`  Temporal CLI TEMPORAL_CONFIG_FILE=${path.join(s.dataDir, 'temporal.toml')} TEMPORAL_PROFILE=cluster temporal workflow list`);
  say(`  state        ${path.join(s.dataDir, 'state.json')}; logs in ${path.join(s.dataDir, 'logs')}`);
  say('Ctrl-C stops everything.');
  const exit = await handle.unexpectedExit;
  if (!state.interrupted) say(`${exit.name} exited unexpectedly; the rest keeps running (Ctrl-C stops it)`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main().catch((err: unknown) => {
    process.stderr.write(`[cluster] failed: ${(err as Error).message}\n`);
    process.exit(1);
  });
}
