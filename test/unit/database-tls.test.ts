import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureClusterCerts, type ClusterCerts } from '../../scripts/cluster/certs';
import { ConfigError, loadConfig } from '../../src/config';
import { pgSslOptions } from '../../src/db/knex';

/** DATABASE_SSL_MODE and DATABASE_SSL_CA mapped to the driver's TLS options. */
let dir: string;
let certs: ClusterCerts;
beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mixroute-db-tls-'));
  certs = await ensureClusterCerts(path.join(dir, 'certs'), 'db.internal');
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const problemOf = (fn: () => unknown): string => {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems.join('\n');
  }
  throw new Error('expected a ConfigError');
};

describe('PostgreSQL TLS settings', () => {
  it('default: plain text, and the pool size per process stays DATABASE_POOL_MAX', () => {
    const config = loadConfig({});
    expect(config.databaseSsl).toEqual({ mode: 'disable', caFile: undefined });
    expect(pgSslOptions(config.databaseSsl)).toBe(false);
    expect(loadConfig({ DATABASE_POOL_MAX: '25' }).databasePoolMax).toBe(25);
  });

  it('require: encrypted without checking the server (documented risk)', () => {
    expect(pgSslOptions(loadConfig({ DATABASE_SSL_MODE: 'require' }).databaseSsl)).toEqual({ rejectUnauthorized: false });
  });

  it('verify-full: the certificate is checked, against DATABASE_SSL_CA when set, else the system CAs', () => {
    expect(pgSslOptions(loadConfig({ DATABASE_SSL_MODE: 'verify-full' }).databaseSsl)).toEqual({ rejectUnauthorized: true });
    const withCa = pgSslOptions(loadConfig({ DATABASE_SSL_MODE: 'verify-full', DATABASE_SSL_CA: certs.ca }).databaseSsl);
    expect(withCa).toEqual({ rejectUnauthorized: true, ca: fs.readFileSync(certs.ca) });
    // No checkServerIdentity override: Node's host name check applies.
    expect(withCa).not.toHaveProperty('checkServerIdentity');
  });

  it('a missing CA file is a clear start-up error naming the setting and the path', () => {
    const missing = path.join(dir, 'no-such-ca.pem');
    const problem = problemOf(() => pgSslOptions(loadConfig({ DATABASE_SSL_MODE: 'verify-full', DATABASE_SSL_CA: missing }).databaseSsl));
    expect(problem).toBe(`DATABASE_SSL_CA: cannot read ${missing} (ENOENT)`);
  });

  it('a CA file that holds no certificate is refused without its contents', () => {
    const bogus = path.join(dir, 'bogus.pem');
    fs.writeFileSync(bogus, 'password=correct-horse-battery\n');
    const problem = problemOf(() => pgSslOptions({ mode: 'verify-full', caFile: bogus }));
    expect(problem).toContain('no PEM certificate');
    expect(problem).not.toContain('correct-horse');
  });

  it('refuses an unknown mode, a CA without verify-full, and TLS parameters in DATABASE_URL', () => {
    expect(problemOf(() => loadConfig({ DATABASE_SSL_MODE: 'prefer' }))).toContain('DATABASE_SSL_MODE');
    expect(problemOf(() => loadConfig({ DATABASE_SSL_MODE: 'require', DATABASE_SSL_CA: certs.ca }))).toContain('DATABASE_SSL_CA: only used with DATABASE_SSL_MODE=verify-full');
    const url = problemOf(() => loadConfig({ DATABASE_URL: 'postgres://u:pw@db/x?sslmode=require&sslrootcert=/etc/passwd' }));
    expect(url).toContain('sslmode, sslrootcert');
    expect(url).not.toContain('pw');
  });
});
