import { spawn } from 'node:child_process';
import { X509Certificate, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureClusterCerts, type ClusterCerts } from '../../scripts/cluster/certs';
import { loadConfig, type Env } from '../../src/config';
import { pgSslOptions } from '../../src/db/knex';
import { temporalConnectOptions } from '../../src/temporal/connection';
import { FROM_SOURCES, runCli } from '../helpers/cli';
import { testConfig, testEnv } from '../helpers/env';
import { eventually } from '../helpers/eventually';

/**
 * Attacks on the connection settings (issue 24): a setting or a profile file that
 * makes a process read another environment variable or the user's own Temporal
 * profile; secrets (API key, private keys) that reach an error or a log line; TLS
 * that does not verify. Temporal over TLS runs here through a TLS proxy (our CA,
 * client certificates required) in front of the test dev server; PostgreSQL's TLS
 * against the local server's own certificate.
 */
const config = testConfig();
const API_KEY = `sk-temporal-canary-${randomUUID()}`;
let dir: string;
let certs: ClusterCerts;
let otherCerts: ClusterCerts;
let proxy: { port: number; close: () => Promise<void> };

const SERVER_NAME = 'temporal.test.internal';

/** mTLS in front of the dev server: our server certificate, client certificates of our CA only, HTTP/2 by ALPN as gRPC wants. */
async function startTlsProxy(target: string, c: ClusterCerts): Promise<{ port: number; close: () => Promise<void> }> {
  const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
  const sockets = new Set<net.Socket>();
  const server = tls.createServer(
    { key: fs.readFileSync(c.serverKey), cert: fs.readFileSync(c.serverCert), ca: fs.readFileSync(c.ca), requestCert: true, rejectUnauthorized: true, ALPNProtocols: ['h2'] },
    (client) => {
      const upstream = net.connect(port, host);
      for (const s of [client, upstream]) {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
        s.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream);
      upstream.pipe(client);
    },
  );
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mixroute-conn-sec-'));
  certs = await ensureClusterCerts(path.join(dir, 'ours'), SERVER_NAME);
  otherCerts = await ensureClusterCerts(path.join(dir, 'theirs'), SERVER_NAME);
  proxy = await startTlsProxy(config.temporal.address!, certs);
});
afterAll(async () => {
  await proxy?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const tlsEnv = (c: ClusterCerts = certs, overrides: Env = {}): Record<string, string> => ({
  TEMPORAL_ADDRESS: `127.0.0.1:${proxy.port}`,
  TEMPORAL_TLS_SERVER_CA_CERT_PATH: c.ca,
  TEMPORAL_TLS_CLIENT_CERT_PATH: c.clientCert,
  TEMPORAL_TLS_CLIENT_KEY_PATH: c.clientKey,
  TEMPORAL_TLS_SERVER_NAME: SERVER_NAME,
  ...(overrides as Record<string, string>),
});

/** Connects with the options our settings give, as a client (3 s) would. */
async function clientConnects(env: Record<string, string>): Promise<boolean> {
  const { address, tls: tlsOptions, apiKey } = temporalConnectOptions(loadConfig(env));
  const options = { address, tls: tlsOptions, apiKey };
  try {
    const connection = await Connection.connect({ ...options, connectTimeout: 3_000 });
    await connection.workflowService.getSystemInfo({});
    await connection.close();
    return true;
  } catch {
    return false;
  }
}

describe('Temporal over TLS', () => {
  it('the CLI, a client and a worker connection get through with our CA, client certificate and server name', async () => {
    const namespace = `tls-${randomUUID()}`;
    const r = await runCli(['temporal', 'setup', '--create-namespace', '--json'], testEnv(config, { ...tlsEnv(), TEMPORAL_NAMESPACE: namespace }));
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toMatchObject({ connection: { tls: true, serverName: SERVER_NAME, serverCa: certs.ca, clientCert: certs.clientCert }, namespace: { status: 'created' }, complete: true });
    expect(r.code).toBe(0);

    expect(await clientConnects(tlsEnv())).toBe(true);
    const { address, tls: tlsOptions } = temporalConnectOptions(loadConfig(tlsEnv()));
    const native = await NativeConnection.connect({ address, tls: tlsOptions });
    try {
      expect((await native.workflowService.getSystemInfo({})).serverVersion).toBeTruthy();
    } finally {
      await native.close();
    }
  });

  it('refuses a server its CA did not sign, a server of another name, and goes nowhere without a client certificate', async () => {
    // The proxy's certificate is signed by our CA; trusting another CA must fail.
    expect(await clientConnects(tlsEnv(certs, { TEMPORAL_TLS_SERVER_CA_CERT_PATH: otherCerts.ca }))).toBe(false);
    expect(await clientConnects(tlsEnv(certs, { TEMPORAL_TLS_SERVER_NAME: 'evil.example' }))).toBe(false);
    // A client certificate of another CA, or none: the server (proxy) refuses.
    expect(await clientConnects(tlsEnv(certs, { TEMPORAL_TLS_CLIENT_CERT_PATH: otherCerts.clientCert, TEMPORAL_TLS_CLIENT_KEY_PATH: otherCerts.clientKey }))).toBe(false);
    expect(await clientConnects({ TEMPORAL_ADDRESS: `127.0.0.1:${proxy.port}`, TEMPORAL_TLS_SERVER_CA_CERT_PATH: certs.ca, TEMPORAL_TLS_SERVER_NAME: SERVER_NAME })).toBe(false);
    // Plain text to a TLS port: no.
    expect(await clientConnects({ TEMPORAL_ADDRESS: `127.0.0.1:${proxy.port}` })).toBe(false);
  });
});

describe('settings read only what they name', () => {
  it('Temporal settings come from the TEMPORAL_* variables given, never from other variables or process.env', () => {
    const before = process.env.TEMPORAL_API_KEY;
    process.env.TEMPORAL_API_KEY = API_KEY;
    try {
      const options = temporalConnectOptions(
        loadConfig({
          TEMPORAL_ADDRESS: '$DATABASE_URL',
          DATABASE_URL: 'postgres://u:db-canary@h/x',
          // envconfig would send these as gRPC headers; they are not read.
          TEMPORAL_GRPC_META_AUTHORIZATION: 'Bearer grpc-meta-canary',
          TEMPORAL_CODEC_AUTH: 'codec-canary',
        }),
      );
      expect(options).toEqual({ address: '$DATABASE_URL', namespace: 'default' });
    } finally {
      if (before === undefined) delete process.env.TEMPORAL_API_KEY;
      else process.env.TEMPORAL_API_KEY = before;
    }
  });

  it("the user's own Temporal profile (~/.config/temporalio/temporal.toml) is not read: only TEMPORAL_CONFIG_FILE names a file", () => {
    const home = path.join(dir, 'home');
    for (const base of [path.join(home, '.config'), path.join(home, 'xdg')]) {
      fs.mkdirSync(path.join(base, 'temporalio'), { recursive: true });
      fs.writeFileSync(path.join(base, 'temporalio', 'temporal.toml'), `[profile.default]\naddress = "attacker.example:7233"\napi_key = "${API_KEY}"\n`);
    }
    const config = loadConfig({ HOME: home, XDG_CONFIG_HOME: path.join(home, 'xdg'), APPDATA: home });
    expect(config.temporal.address).toBeUndefined();
    expect(temporalConnectOptions(config)).toEqual({ address: '127.0.0.1:7233', namespace: 'default' });
  });

  it('a profile file cannot pull in a variable: values are taken literally', () => {
    const file = path.join(dir, 'profile.toml');
    fs.writeFileSync(file, '[profile.default]\naddress = "${DATABASE_URL}"\nnamespace = "$HOME"\napi_key = "env:TEMPORAL_API_KEY"\n');
    const options = temporalConnectOptions(loadConfig({ TEMPORAL_CONFIG_FILE: file, DATABASE_URL: 'postgres://u:db-canary@h/x', HOME: '/root' }));
    expect(options).toMatchObject({ address: '${DATABASE_URL}', namespace: '$HOME', apiKey: 'env:TEMPORAL_API_KEY' });
  });
});

describe('secrets stay out of output', () => {
  it('the API key is in no output of the CLI, whether it connects or fails', async () => {
    // With an API key TLS is on: against the plain dev server the connection fails.
    const failed = await runCli(['temporal', 'setup', '--check', '--json'], testEnv(config, { TEMPORAL_API_KEY: API_KEY }));
    expect(failed.code).not.toBe(0);
    expect(failed.stderr).toContain('unreachable');
    // TLS off (a dev server ignores the key): it works and shows that a key is set.
    const ok = await runCli(['temporal', 'setup', '--check', '--json'], testEnv(config, { TEMPORAL_API_KEY: API_KEY, TEMPORAL_TLS: 'false' }));
    expect(JSON.parse(ok.stdout).connection.apiKey).toBe('set');
    // A key file that is not a key: refused, its contents not echoed.
    const notAKey = path.join(dir, 'key-with-secret.pem');
    fs.writeFileSync(notAKey, `${API_KEY}\n`);
    const bad = await runCli(['temporal', 'setup'], testEnv(config, { TEMPORAL_TLS_CLIENT_CERT_PATH: certs.clientCert, TEMPORAL_TLS_CLIENT_KEY_PATH: notAKey }));
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('TEMPORAL_TLS_CLIENT_KEY_PATH');
    for (const r of [failed, ok, bad]) expect(r.stdout + r.stderr).not.toContain(API_KEY);
  });

  it("a worker's log lines carry neither the API key nor key material", async () => {
    const keyLine = fs.readFileSync(certs.clientKey, 'utf8').split('\n')[1]!;
    // From the sources: bin/mixroute.js would run dist/ under NODE_ENV=production, and a clean clone has no build.
    const child = spawn(process.execPath, [...FROM_SOURCES, 'worker'], {
      env: testEnv(config, { ...tlsEnv(), TEMPORAL_API_KEY: API_KEY, LOG_LEVEL: 'debug', NODE_ENV: 'production' }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    try {
      await eventually(() => expect(output).toContain('worker polling task queue'), { timeoutMs: 90_000, message: 'the worker is polling over mTLS' });
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
    expect(output).toContain('"apiKey":"set"');
    expect(output).not.toContain(API_KEY);
    expect(output).not.toContain(keyLine);
  });
});

describe('PostgreSQL TLS against the local server', () => {
  /** The server's own certificate, when it has TLS on (the Debian package does, with its snakeoil certificate). */
  let serverCert: string | undefined;
  beforeAll(async () => {
    const client = new pg.Client({ connectionString: config.databaseUrl });
    await client.connect();
    try {
      const ssl = (await client.query<{ ssl: string }>('SHOW ssl')).rows[0]!.ssl;
      const file = ssl === 'on' ? (await client.query<{ ssl_cert_file: string }>('SHOW ssl_cert_file')).rows[0]!.ssl_cert_file : undefined;
      const dataDir = (await client.query<{ data_directory: string }>('SHOW data_directory')).rows[0]!.data_directory;
      const resolved = file && (path.isAbsolute(file) ? file : path.join(dataDir, file));
      serverCert = resolved && fs.existsSync(resolved) ? resolved : undefined;
    } finally {
      await client.end();
    }
  });

  const connects = async (url: string, ssl: ReturnType<typeof pgSslOptions>): Promise<{ ok: boolean; encrypted?: boolean; error?: string }> => {
    const client = new pg.Client({ connectionString: url, ssl, connectionTimeoutMillis: 5_000 });
    try {
      await client.connect();
      const { rows } = await client.query<{ ssl: boolean }>('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
      return { ok: true, encrypted: rows[0]!.ssl };
    } catch (err) {
      return { ok: false, error: (err as Error).message };
    } finally {
      await client.end().catch(() => undefined);
    }
  };

  it('require encrypts; verify-full refuses another CA and a host name the certificate does not carry', async (ctx) => {
    if (!serverCert) ctx.skip('this PostgreSQL has no TLS certificate (the embedded server): nothing to verify against');
    const url = new URL(config.databaseUrl);
    url.hostname = '127.0.0.1';
    expect(await connects(url.toString(), pgSslOptions({ mode: 'require', caFile: undefined }))).toEqual({ ok: true, encrypted: true });
    const otherCa = await connects(url.toString(), pgSslOptions({ mode: 'verify-full', caFile: certs.ca }));
    expect(otherCa.ok).toBe(false);
    // Trusting the server's own (self-signed) certificate, but asking for an address it does not name.
    const cert = new X509Certificate(fs.readFileSync(serverCert!));
    expect(cert.subjectAltName ?? '').not.toContain('IP Address:127.0.0.1');
    const wrongHost = await connects(url.toString(), pgSslOptions({ mode: 'verify-full', caFile: serverCert }));
    expect(wrongHost).toMatchObject({ ok: false });
    expect(wrongHost.error).toMatch(/IP: 127\.0\.0\.1 is not in the cert's list|does not match/);
  });
});
