import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { dataKey } from '../shared/dataKey';

/**
 * Access and portability packages are encrypted at rest (AES-256-GCM) in
 * dsr_exports and handed out through signed, expiring links:
 * /privacy/packages/{exportId}?expires={unix s}&sig={HMAC}. The link is the
 * only way to the package; it goes to the subject by email, never into
 * Temporal history or logs.
 *
 * The key comes from DSR_PACKAGE_KEY (base64, 32 bytes). Without it (dev and
 * tests) a key is created once under DATA_DIR/secrets/ and shared by the
 * processes of that data dir.
 */
export function packageKey(config: { dsr: { packageKey: string | undefined }; dataDir: string }): Buffer {
  return dataKey({ value: config.dsr.packageKey, setting: 'DSR_PACKAGE_KEY', dataDir: config.dataDir, file: 'dsr-package.key' });
}

export interface Sealed {
  ciphertext: Buffer;
  iv: Buffer;
  authTag: Buffer;
}

export function seal(key: Buffer, plaintext: Uint8Array, aad: string): Sealed {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(aad));
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return { ciphertext, iv, authTag: cipher.getAuthTag() };
}

export function open(key: Buffer, sealed: Sealed, aad: string): Buffer {
  const decipher = createDecipheriv('aes-256-gcm', key, sealed.iv);
  decipher.setAAD(Buffer.from(aad));
  decipher.setAuthTag(sealed.authTag);
  return Buffer.concat([decipher.update(sealed.ciphertext), decipher.final()]);
}

const signingKey = (key: Buffer) => createHmac('sha256', key).update('dsr-package-link').digest();

export function signLink(key: Buffer, exportId: string, expiresAt: Date): { expires: number; sig: string } {
  const expires = Math.floor(expiresAt.getTime() / 1000);
  const sig = createHmac('sha256', signingKey(key)).update(`${exportId}.${expires}`).digest('base64url');
  return { expires, sig };
}

export function verifyLink(key: Buffer, exportId: string, expires: number, sig: string, now: Date): 'ok' | 'expired' | 'invalid' {
  const want = Buffer.from(signLink(key, exportId, new Date(expires * 1000)).sig);
  const got = Buffer.from(sig);
  if (want.length !== got.length || !timingSafeEqual(want, got)) return 'invalid';
  return now.getTime() / 1000 > expires ? 'expired' : 'ok';
}
