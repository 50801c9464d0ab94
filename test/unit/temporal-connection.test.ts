import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureClusterCerts, type ClusterCerts } from '../../scripts/cluster/certs';
import { ConfigError, loadConfig } from '../../src/config';
import { describeTemporalConnection, temporalConnectOptions } from '../../src/temporal/connection';

/**
 * The Temporal connection settings (@temporalio/envconfig: variables and profiles)
 * mapped to the options every process connects with. Real files, made by openssl.
 */
let dir: string;
let certs: ClusterCerts;
beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mixroute-temporal-conn-'));
  certs = await ensureClusterCerts(path.join(dir, 'certs'), 'temporal.internal');
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const read = (f: string) => new Uint8Array(fs.readFileSync(f));
const problemOf = (fn: () => unknown): string => {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems.join('\n');
  }
  throw new Error('expected a ConfigError');
};

describe('Temporal connect options from the environment', () => {
  it('without settings: the local dev server, namespace default, plain text', () => {
    expect(temporalConnectOptions(loadConfig({}))).toEqual({ address: '127.0.0.1:7233', namespace: 'default' });
  });

  it('TEMPORAL_ADDRESS and TEMPORAL_NAMESPACE keep working', () => {
    const config = loadConfig({ TEMPORAL_ADDRESS: 'temporal.internal:7233', TEMPORAL_NAMESPACE: 'billing' });
    expect(config.temporal.address).toBe('temporal.internal:7233');
    expect(temporalConnectOptions(config)).toEqual({ address: 'temporal.internal:7233', namespace: 'billing' });
  });

  it('mTLS: server CA, client certificate and key read from their files, and the server name', () => {
    const options = temporalConnectOptions(
      loadConfig({
        TEMPORAL_ADDRESS: '10.0.0.5:7233',
        TEMPORAL_TLS_SERVER_CA_CERT_PATH: certs.ca,
        TEMPORAL_TLS_CLIENT_CERT_PATH: certs.clientCert,
        TEMPORAL_TLS_CLIENT_KEY_PATH: certs.clientKey,
        TEMPORAL_TLS_SERVER_NAME: 'temporal.internal',
      }),
    );
    expect(options.tls).toEqual({
      serverNameOverride: 'temporal.internal',
      serverRootCACertificate: read(certs.ca),
      clientCertPair: { crt: read(certs.clientCert), key: read(certs.clientKey) },
    });
    expect(options.apiKey).toBeUndefined();
  });

  it('server-only TLS with our CA, and TEMPORAL_TLS=true alone uses the system CAs', () => {
    const ca = temporalConnectOptions(loadConfig({ TEMPORAL_ADDRESS: 'x:7233', TEMPORAL_TLS_SERVER_CA_CERT_PATH: certs.ca }));
    expect(ca.tls).toMatchObject({ serverRootCACertificate: read(certs.ca) });
    expect((ca.tls as { clientCertPair?: unknown }).clientCertPair).toBeUndefined();
    const system = temporalConnectOptions(loadConfig({ TEMPORAL_ADDRESS: 'x:7233', TEMPORAL_TLS: 'true' }));
    expect(system.tls).toBeTypeOf('object');
    expect((system.tls as { serverRootCACertificate?: unknown }).serverRootCACertificate).toBeUndefined();
  });

  it('an API key turns TLS on (Temporal Cloud); TEMPORAL_TLS=false turns it off again', () => {
    const cloud = temporalConnectOptions(loadConfig({ TEMPORAL_ADDRESS: 'ns.a1b2c.tmprl.cloud:7233', TEMPORAL_NAMESPACE: 'ns.a1b2c', TEMPORAL_API_KEY: 'key-123' }));
    expect(cloud).toEqual({ address: 'ns.a1b2c.tmprl.cloud:7233', namespace: 'ns.a1b2c', apiKey: 'key-123', tls: true });
    const plain = temporalConnectOptions(loadConfig({ TEMPORAL_ADDRESS: 'x:7233', TEMPORAL_API_KEY: 'key-123', TEMPORAL_TLS: 'false' }));
    expect(plain.tls).toBe(false);
    expect(plain.apiKey).toBe('key-123');
  });

  it('rejects a TEMPORAL_TLS that is not a boolean', () => {
    expect(problemOf(() => loadConfig({ TEMPORAL_TLS: 'yes' }))).toContain('TEMPORAL_TLS');
  });
});

describe('Temporal connect options from a profile file (TEMPORAL_CONFIG_FILE, TEMPORAL_PROFILE)', () => {
  const writeProfile = (name: string, toml: string) => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, toml);
    return file;
  };

  it('reads the named profile; variables override it', () => {
    const file = writeProfile(
      'temporal.toml',
      [
        '[profile.default]',
        'address = "127.0.0.1:7233"',
        '[profile.prod]',
        'address = "temporal.prod.internal:7233"',
        'namespace = "mixroute-prod"',
        'api_key = "profile-key"',
        '[profile.prod.tls]',
        `server_ca_cert_path = "${certs.ca}"`,
        `client_cert_path = "${certs.clientCert}"`,
        `client_key_path = "${certs.clientKey}"`,
        'server_name = "temporal.internal"',
        '[profile.prod.grpc_meta]',
        'x-team = "billing"',
      ].join('\n'),
    );
    const config = loadConfig({ TEMPORAL_CONFIG_FILE: file, TEMPORAL_PROFILE: 'prod' });
    expect(config.temporal.address).toBe('temporal.prod.internal:7233');
    expect(config.temporal.namespace).toBe('mixroute-prod');
    expect(temporalConnectOptions(config)).toEqual({
      address: 'temporal.prod.internal:7233',
      namespace: 'mixroute-prod',
      apiKey: 'profile-key',
      metadata: { 'x-team': 'billing' },
      tls: { serverNameOverride: 'temporal.internal', serverRootCACertificate: read(certs.ca), clientCertPair: { crt: read(certs.clientCert), key: read(certs.clientKey) } },
    });

    const overridden = loadConfig({ TEMPORAL_CONFIG_FILE: file, TEMPORAL_PROFILE: 'prod', TEMPORAL_ADDRESS: 'other:7233', TEMPORAL_NAMESPACE: 'other-ns', TEMPORAL_TLS_SERVER_NAME: 'other.internal' });
    expect(temporalConnectOptions(overridden)).toMatchObject({ address: 'other:7233', namespace: 'other-ns', tls: { serverNameOverride: 'other.internal' } });

    // Without TEMPORAL_PROFILE: the `default` profile.
    expect(loadConfig({ TEMPORAL_CONFIG_FILE: file }).temporal.address).toBe('127.0.0.1:7233');
  });

  it('names a missing file, a missing profile, an unknown key and a profile without a file', () => {
    expect(problemOf(() => loadConfig({ TEMPORAL_CONFIG_FILE: path.join(dir, 'nope.toml') }))).toMatch(/TEMPORAL_CONFIG_FILE: cannot read .*nope\.toml \(ENOENT\)/);
    const file = writeProfile('one.toml', '[profile.default]\naddress = "a:1"\n');
    expect(problemOf(() => loadConfig({ TEMPORAL_CONFIG_FILE: file, TEMPORAL_PROFILE: 'staging' }))).toContain("Profile 'staging' not found");
    const typo = writeProfile('typo.toml', '[profile.default]\nadress = "a:1"\n');
    expect(problemOf(() => loadConfig({ TEMPORAL_CONFIG_FILE: typo }))).toContain('adress');
    expect(problemOf(() => loadConfig({ TEMPORAL_PROFILE: 'prod' }))).toContain('TEMPORAL_CONFIG_FILE, which is not set');
  });

  it('a TOML syntax error names the line, not the text around it (it may hold the API key)', () => {
    const file = writeProfile('broken.toml', '[profile.default]\napi_key = "sk-profile-secret-42\naddress = "a:1"\n');
    const problem = problemOf(() => loadConfig({ TEMPORAL_CONFIG_FILE: file }));
    expect(problem).toMatch(/not valid TOML \(line \d+, column \d+\)/);
    expect(problem).not.toContain('sk-profile-secret-42');
  });
});

describe('certificate files', () => {
  it('a missing file is a clear error naming the setting and the path', () => {
    const missing = path.join(dir, 'missing-ca.pem');
    const problem = problemOf(() => temporalConnectOptions(loadConfig({ TEMPORAL_ADDRESS: 'x:7233', TEMPORAL_TLS_SERVER_CA_CERT_PATH: missing })));
    expect(problem).toContain('TEMPORAL_TLS_SERVER_CA_CERT_PATH');
    expect(problem).toContain(missing);
    expect(problem).toContain('ENOENT');
  });

  it('a file that is not what it should be is refused without its contents in the message', () => {
    const notAKey = path.join(dir, 'not-a-key.pem');
    fs.writeFileSync(notAKey, 'hunter2-very-secret-line\n');
    const problem = problemOf(() =>
      temporalConnectOptions(loadConfig({ TEMPORAL_ADDRESS: 'x:7233', TEMPORAL_TLS_CLIENT_CERT_PATH: certs.clientCert, TEMPORAL_TLS_CLIENT_KEY_PATH: notAKey })),
    );
    expect(problem).toContain('TEMPORAL_TLS_CLIENT_KEY_PATH');
    expect(problem).toContain('not a PEM private key');
    expect(problem).not.toContain('hunter2');
    // A key given as the CA: parsed as a certificate, refused, not echoed.
    const swapped = problemOf(() => temporalConnectOptions(loadConfig({ TEMPORAL_ADDRESS: 'x:7233', TEMPORAL_TLS_SERVER_CA_CERT_PATH: certs.clientKey })));
    expect(swapped).toContain('not a PEM certificate');
    expect(swapped).not.toContain(fs.readFileSync(certs.clientKey, 'utf8').split('\n')[1]!);
  });

  it('a client certificate without its key (or the reverse) is an error, not a silent plain TLS', () => {
    expect(problemOf(() => temporalConnectOptions(loadConfig({ TEMPORAL_ADDRESS: 'x:7233', TEMPORAL_TLS_CLIENT_CERT_PATH: certs.clientCert })))).toContain('needs both');
    expect(problemOf(() => temporalConnectOptions(loadConfig({ TEMPORAL_ADDRESS: 'x:7233', TEMPORAL_TLS_CLIENT_KEY_PATH: certs.clientKey })))).toContain('needs both');
  });
});

describe('what may be shown', () => {
  it('the config and its description never carry the API key or key material', () => {
    const keyPem = fs.readFileSync(certs.clientKey, 'utf8');
    const config = loadConfig({
      TEMPORAL_ADDRESS: 'x:7233',
      TEMPORAL_API_KEY: 'sk-temporal-secret-99',
      TEMPORAL_TLS_CLIENT_CERT_PATH: certs.clientCert,
      TEMPORAL_TLS_CLIENT_KEY_DATA: keyPem,
    });
    const shown = [JSON.stringify(config), inspect(config, { depth: 10 }), JSON.stringify(describeTemporalConnection(config))].join('\n');
    expect(shown).not.toContain('sk-temporal-secret-99');
    expect(shown).not.toContain(keyPem.split('\n')[1]!);
    expect(describeTemporalConnection(config)).toEqual({ address: 'x:7233', namespace: 'default', tls: true, clientCert: certs.clientCert, apiKey: 'set' });
    // ...while the connect options do carry them.
    expect(temporalConnectOptions(config)).toMatchObject({ apiKey: 'sk-temporal-secret-99', tls: { clientCertPair: { key: new Uint8Array(Buffer.from(keyPem)) } } });
  });
});
