import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/**
 * A 32-byte sealing key: from its setting (base64) when set; otherwise (dev and
 * tests) created once under DATA_DIR/secrets/<file> and shared by the processes
 * of that data dir. Processes on different machines need the setting, or one
 * cannot open what another sealed.
 */
export function dataKey(opts: { value: string | undefined; setting: string; dataDir: string; file: string }): Buffer {
  if (opts.value) {
    const key = Buffer.from(opts.value, 'base64');
    if (key.length !== 32) throw new Error(`${opts.setting} must be 32 bytes, base64-encoded`);
    return key;
  }
  const file = path.join(opts.dataDir, 'secrets', opts.file);
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  try {
    fs.writeFileSync(file, randomBytes(32).toString('base64'), { flag: 'wx', mode: 0o600 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  return Buffer.from(fs.readFileSync(file, 'utf8').trim(), 'base64');
}
