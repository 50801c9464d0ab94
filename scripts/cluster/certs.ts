/**
 * The cluster's certificates, made with the `openssl` command (Debian's, always
 * present with ca-certificates) rather than by hand: one CA, and signed by it
 *   - server.pem/key    the Temporal frontends' certificate (SAN: the server name,
 *                       localhost, 127.0.0.1), which clients verify;
 *   - internode.pem/key what the Temporal nodes present to each other and to their
 *                       own frontends (server and client authentication: mTLS
 *                       between nodes too);
 *   - client.pem/key    MixRoute's client certificate (the frontends require one).
 * Private keys are written 0600 and never printed. Existing files are kept while
 * they are valid for more than a week and name the same server, so a Temporal CLI
 * pointed at them keeps working across restarts.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface ClusterCerts {
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  internodeCert: string;
  internodeKey: string;
  clientCert: string;
  clientKey: string;
  serverName: string;
}

const DAYS = 90;
const WEEK_S = 7 * 24 * 3600;

async function openssl(args: string[], cwd: string): Promise<void> {
  try {
    await run('openssl', args, { cwd });
  } catch (err) {
    const e = err as { code?: string; stderr?: string };
    if (e.code === 'ENOENT') throw new Error('openssl is not installed (apt-get install openssl): it makes the cluster certificates');
    // openssl's stderr names files and options, never key material.
    throw new Error(`openssl ${args[0]} failed: ${(e.stderr ?? String(err)).trim().split('\n').slice(-3).join(' ')}`);
  }
}

async function stillGood(cert: string, serverName: string, cwd: string): Promise<boolean> {
  if (!fs.existsSync(cert)) return false;
  try {
    await run('openssl', ['x509', '-in', cert, '-noout', '-checkend', String(WEEK_S)], { cwd });
    const { stdout } = await run('openssl', ['x509', '-in', cert, '-noout', '-ext', 'subjectAltName'], { cwd });
    return stdout.includes(`DNS:${serverName}`);
  } catch {
    return false;
  }
}

/** A P-256 key and a certificate for it signed by the CA, with the given extensions. */
async function issue(dir: string, name: string, subject: string, extensions: string[]): Promise<void> {
  const ext = path.join(dir, `${name}.ext`);
  fs.writeFileSync(ext, `${extensions.join('\n')}\n`);
  await openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${name}.key`], dir);
  fs.chmodSync(path.join(dir, `${name}.key`), 0o600);
  await openssl(['req', '-new', '-key', `${name}.key`, '-subj', subject, '-out', `${name}.csr`], dir);
  await openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', String(DAYS), '-sha256', '-extfile', ext, '-out', `${name}.pem`], dir);
  fs.rmSync(path.join(dir, `${name}.csr`));
  fs.rmSync(ext);
}

export async function ensureClusterCerts(dir: string, serverName: string): Promise<ClusterCerts> {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const certs: ClusterCerts = {
    dir,
    ca: path.join(dir, 'ca.pem'),
    serverCert: path.join(dir, 'server.pem'),
    serverKey: path.join(dir, 'server.key'),
    internodeCert: path.join(dir, 'internode.pem'),
    internodeKey: path.join(dir, 'internode.key'),
    clientCert: path.join(dir, 'client.pem'),
    clientKey: path.join(dir, 'client.key'),
    serverName,
  };
  const all = [certs.ca, certs.serverKey, certs.internodeKey, certs.clientKey, certs.clientCert];
  if (all.every((f) => fs.existsSync(f)) && (await stillGood(certs.serverCert, serverName, dir)) && (await stillGood(certs.internodeCert, serverName, dir))) {
    return certs;
  }

  await openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'ca.key'], dir);
  fs.chmodSync(path.join(dir, 'ca.key'), 0o600);
  await openssl(
    [
      'req', '-x509', '-new', '-key', 'ca.key', '-sha256', '-days', String(DAYS + 1), '-subj', '/O=MixRoute/CN=MixRoute cluster CA',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', 'ca.pem',
    ],
    dir,
  );
  const san = `subjectAltName=DNS:${serverName},DNS:localhost,IP:127.0.0.1`;
  const leaf = ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature,keyEncipherment'];
  await issue(dir, 'server', `/O=MixRoute/CN=${serverName}`, [...leaf, 'extendedKeyUsage=serverAuth', san]);
  await issue(dir, 'internode', `/O=MixRoute/CN=internode.${serverName}`, [...leaf, 'extendedKeyUsage=serverAuth,clientAuth', san]);
  await issue(dir, 'client', '/O=MixRoute/CN=mixroute', [...leaf, 'extendedKeyUsage=clientAuth']);
  return certs;
}
