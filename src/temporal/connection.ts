import { X509Certificate, createPrivateKey } from 'node:crypto';
import fs from 'node:fs';
import { toClientOptions, type ClientConfigTLS, type ConfigDataSource } from '@temporalio/envconfig';
import { ConfigError, temporalAddress, type Config } from '../config';

/**
 * How every process reaches Temporal: the gateway and admin servers (Connection.lazy),
 * the worker (NativeConnection.connect), the CLI, `mixroute dev` and the health probes
 * (Connection.connect). The settings are Temporal's own environment configuration
 * (@temporalio/envconfig, resolved in src/config.ts); this turns them into connect
 * options, reading the certificate files named there.
 *
 * The same shape fits both Connection and NativeConnection: `address`, `tls`,
 * `apiKey` and `metadata` mean the same to both.
 */
export interface TemporalConnectOptions {
  address: string;
  namespace: string;
  /** true: TLS with the system's CAs; an object: our CA, client certificate, server name. */
  tls?: boolean | { serverNameOverride?: string; serverRootCACertificate?: Uint8Array; clientCertPair?: { crt: Uint8Array; key: Uint8Array } };
  apiKey?: string;
  metadata?: Record<string, string>;
}

/** What each file is, named by its environment variable and its profile key, for messages. */
const FILES = {
  serverCACert: { what: 'server CA certificate', env: 'TEMPORAL_TLS_SERVER_CA_CERT_PATH', key: 'tls.server_ca_cert_path', kind: 'certificate' },
  clientCert: { what: 'client certificate', env: 'TEMPORAL_TLS_CLIENT_CERT_PATH', key: 'tls.client_cert_path', kind: 'certificate' },
  clientKey: { what: 'client private key', env: 'TEMPORAL_TLS_CLIENT_KEY_PATH', key: 'tls.client_key_path', kind: 'key' },
} as const;

/**
 * The connect options of this process. Reads the certificate and key files once (a
 * rotated certificate takes a rolling restart) and checks each parses as what it
 * should be, so a wrong path fails at start with the setting named. Errors name the
 * file and the reason, never its contents.
 */
export function temporalConnectOptions(config: Config): TemporalConnectOptions {
  const profile = config.temporal.connection.profile();
  let tls: ClientConfigTLS | undefined = profile.tls;
  if (tls && tls.disabled !== true) {
    if (!tls.clientCert !== !tls.clientKey) {
      throw new ConfigError([`Temporal mTLS needs both a client certificate and its key (${FILES.clientCert.env} and ${FILES.clientKey.env}, or the profile's ${FILES.clientCert.key} and ${FILES.clientKey.key}); only one is set`]);
    }
    tls = {
      ...tls,
      serverCACert: loadPem(tls.serverCACert, FILES.serverCACert),
      clientCert: loadPem(tls.clientCert, FILES.clientCert),
      clientKey: loadPem(tls.clientKey, FILES.clientKey),
    };
  }
  // Envconfig's own mapping: TLS on when configured or when an API key is set (Temporal Cloud).
  const { connectionOptions } = toClientOptions({ ...profile, tls });
  return {
    address: temporalAddress(config),
    namespace: config.temporal.namespace,
    ...(connectionOptions.tls !== undefined && connectionOptions.tls !== null ? { tls: connectionOptions.tls } : {}),
    ...(connectionOptions.apiKey !== undefined ? { apiKey: connectionOptions.apiKey as string } : {}),
    ...(connectionOptions.metadata ? { metadata: connectionOptions.metadata as Record<string, string> } : {}),
  };
}

/** For log lines and `mixroute temporal setup`: where and how, never a key. */
export function describeTemporalConnection(config: Config): { address: string; namespace: string } & ReturnType<Config['temporal']['connection']['describe']> {
  return { address: temporalAddress(config), namespace: config.temporal.namespace, ...config.temporal.connection.describe() };
}

function loadPem(source: ConfigDataSource | undefined, file: (typeof FILES)[keyof typeof FILES]): ConfigDataSource | undefined {
  if (!source) return undefined;
  const label = 'path' in source ? `${file.what} ${source.path} (${file.env} or the profile's ${file.key})` : `${file.what} (inline data)`;
  let data: Buffer;
  if ('path' in source) {
    try {
      data = fs.readFileSync(source.path);
    } catch (err) {
      throw new ConfigError([`Temporal ${label}: cannot read it (${(err as NodeJS.ErrnoException).code ?? 'error'})`]);
    }
  } else {
    data = Buffer.from(source.data);
  }
  // Parsed only to fail early and clearly; the SDK gets the bytes as they are.
  try {
    if (file.kind === 'certificate') new X509Certificate(data);
    else createPrivateKey(data);
  } catch {
    throw new ConfigError([`Temporal ${label}: not a PEM ${file.kind === 'certificate' ? 'certificate' : 'private key (unencrypted)'}`]);
  }
  return { data: new Uint8Array(data) };
}
