/**
 * One Temporal server configuration per node, in the shape of the server's own
 * config/development-postgres12.yaml and docker/config_template.yaml (v1.29.1).
 * Written as JSON, which is YAML: the server reads it with its YAML loader, and
 * no template engine or YAML writer is needed.
 */
import type { ClusterCerts } from './certs';

export interface PgTarget {
  host: string;
  port: number;
  user: string;
  password: string;
}

/** Ports of one node. Every service has its own gRPC and membership port. */
export interface NodePorts {
  frontend: number;
  frontendHttp: number;
  history: number;
  matching: number;
  worker: number;
  membership: { frontend: number; history: number; matching: number; worker: number };
  metrics: number;
}

/** Node n (1-based) gets the block basePort + 100·(n-1): frontend at +33 like 7233, membership at +50 from each gRPC port. */
export function nodePorts(basePort: number, node: number): NodePorts {
  const b = basePort + 100 * (node - 1);
  return {
    frontend: b + 33,
    frontendHttp: b + 43,
    history: b + 34,
    matching: b + 35,
    worker: b + 39,
    membership: { frontend: b + 83, history: b + 84, matching: b + 85, worker: b + 89 },
    metrics: b + 90,
  };
}

export const TEMPORAL_DB_PLUGIN = 'postgres12';

function sqlStore(pg: PgTarget, databaseName: string, maxConns: number) {
  return {
    sql: {
      pluginName: TEMPORAL_DB_PLUGIN,
      databaseName,
      connectAddr: `${pg.host}:${pg.port}`,
      connectProtocol: 'tcp',
      user: pg.user,
      password: pg.password,
      maxConns,
      maxIdleConns: maxConns,
      maxConnLifetime: '1h',
    },
  };
}

export function temporalNodeConfig(opts: {
  node: number;
  ports: NodePorts;
  pg: PgTarget;
  databases: { temporal: string; visibility: string };
  certs: ClusterCerts;
  numHistoryShards: number;
  dynamicConfigFile: string;
  logLevel?: string;
}) {
  const { ports, certs } = opts;
  const service = (grpcPort: number, membershipPort: number, httpPort?: number) => ({
    rpc: { grpcPort, membershipPort, bindOnLocalHost: true, ...(httpPort ? { httpPort } : {}) },
  });
  // Both nodes trust only the cluster CA, on both sides of every connection.
  const internodeClient = { serverName: certs.serverName, rootCaFiles: [certs.ca] };
  return {
    log: { stdout: true, level: opts.logLevel ?? 'warn' },
    persistence: {
      // Shards are fixed for the life of a cluster: changing it needs a new cluster.
      numHistoryShards: opts.numHistoryShards,
      defaultStore: 'postgres-default',
      visibilityStore: 'postgres-visibility',
      datastores: {
        'postgres-default': sqlStore(opts.pg, opts.databases.temporal, 10),
        'postgres-visibility': sqlStore(opts.pg, opts.databases.visibility, 4),
      },
    },
    global: {
      // Nodes find each other through the cluster_membership table and talk on loopback.
      membership: { maxJoinDuration: '30s', broadcastAddress: '127.0.0.1' },
      pprof: { port: 0 },
      metrics: { prometheus: { framework: 'tally', timerType: 'histogram', listenAddress: `127.0.0.1:${ports.metrics}` } },
      tls: {
        internode: {
          server: { certFile: certs.internodeCert, keyFile: certs.internodeKey, requireClientAuth: true, clientCaFiles: [certs.ca] },
          client: internodeClient,
        },
        frontend: {
          server: { certFile: certs.serverCert, keyFile: certs.serverKey, requireClientAuth: true, clientCaFiles: [certs.ca] },
          client: internodeClient,
        },
        // The system workers (schedules, namespace deletion, ...) call the frontends with the internode certificate.
        systemWorker: { certFile: certs.internodeCert, keyFile: certs.internodeKey, client: internodeClient },
      },
    },
    services: {
      frontend: service(ports.frontend, ports.membership.frontend, ports.frontendHttp),
      history: service(ports.history, ports.membership.history),
      matching: service(ports.matching, ports.membership.matching),
      worker: service(ports.worker, ports.membership.worker),
    },
    clusterMetadata: {
      enableGlobalNamespace: false,
      failoverVersionIncrement: 10,
      masterClusterName: 'active',
      currentClusterName: 'active',
      clusterInformation: { active: { enabled: true, initialFailoverVersion: 1, rpcName: 'frontend', rpcAddress: `127.0.0.1:${ports.frontend}` } },
    },
    dcRedirectionPolicy: { policy: 'noop' },
    archival: { history: { state: 'disabled' }, visibility: { state: 'disabled' } },
    namespaceDefaults: { archival: { history: { state: 'disabled' }, visibility: { state: 'disabled' } } },
    dynamicConfigClient: { filepath: opts.dynamicConfigFile, pollInterval: '10s' },
  };
}

/**
 * Dynamic config shared by both nodes. A freshly added search attribute is seen
 * by every frontend at once (otherwise each node's cache refreshes on its own
 * timer and `mixroute temporal setup` followed by a start on the other node can
 * fail); the namespace cache refreshes faster so a namespace registered on one
 * node is usable through the other within seconds.
 */
export function dynamicConfigYaml(): string {
  return [
    '# Written by scripts/cluster/cluster.ts.',
    'system.forceSearchAttributesCacheRefreshOnRead:',
    '  - value: true',
    '    constraints: {}',
    'system.namespaceCacheRefreshInterval:',
    '  - value: 2s',
    '    constraints: {}',
    'frontend.enableUpdateWorkflowExecution:',
    '  - value: true',
    '    constraints: {}',
    '',
  ].join('\n');
}

/** The Web UI server's config (github.com/temporalio/ui-server): mTLS to a frontend with MixRoute's client certificate. */
export function uiServerConfig(opts: { frontend: string; port: number; namespace: string; certs: ClusterCerts }) {
  return {
    temporalGrpcAddress: opts.frontend,
    host: '127.0.0.1',
    port: opts.port,
    enableUi: true,
    defaultNamespace: opts.namespace,
    refreshInterval: '1m',
    notifyOnNewVersion: false,
    cors: { cookieInsecure: true, allowOrigins: [`http://127.0.0.1:${opts.port}`, `http://localhost:${opts.port}`] },
    tls: {
      caFile: opts.certs.ca,
      certFile: opts.certs.clientCert,
      keyFile: opts.certs.clientKey,
      enableHostVerification: true,
      serverName: opts.certs.serverName,
    },
    auth: { enabled: false },
  };
}
