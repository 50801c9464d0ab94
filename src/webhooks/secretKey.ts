import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/**
 * The key that seals endpoint secrets at rest: WEBHOOK_SECRET_KEY (base64, 32
 * bytes). Without it (dev and tests) a key is created once under
 * DATA_DIR/secrets/ and shared by the processes of that data dir; processes
 * on different machines need the variable set, or the worker cannot open a
 * secret that the admin server sealed.
 */
export function webhookSecretKey(config: { secretKey: string | undefined; dataDir: string }): Buffer {
  if (config.secretKey) {
    const key = Buffer.from(config.secretKey, 'base64');
    if (key.length !== 32) throw new Error('WEBHOOK_SECRET_KEY must be 32 bytes, base64-encoded');
    return key;
  }
  const file = path.join(config.dataDir, 'secrets', 'webhook-secret.key');
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  try {
    fs.writeFileSync(file, randomBytes(32).toString('base64'), { flag: 'wx', mode: 0o600 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  return Buffer.from(fs.readFileSync(file, 'utf8').trim(), 'base64');
}
