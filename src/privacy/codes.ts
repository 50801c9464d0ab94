import { createHmac, timingSafeEqual } from 'node:crypto';
import { packageKey } from './packages';

/**
 * One-time verification codes of data-subject requests. Only a keyed hash
 * (HMAC-SHA256) is stored: six digits are a million candidates, so a plain
 * hash in a leaked row or backup would give the code back in a second.
 *
 * The key is DSR_CODE_KEY when set; otherwise it is derived from the package
 * key (DSR_PACKAGE_KEY, or the one made under DATA_DIR/secrets/ in dev and
 * tests), which worker and admin server already share.
 */
export function codeKey(config: { dsr: { codeKey: string | undefined; packageKey: string | undefined }; dataDir: string }): Buffer {
  if (config.dsr.codeKey) return Buffer.from(config.dsr.codeKey, 'utf8');
  return createHmac('sha256', packageKey(config)).update('dsr-verification-code').digest();
}

/** The stored form of a request's code: bound to the request, so one hash is no use for another. */
export const hashCode = (key: Buffer, requestId: string, code: string): string => createHmac('sha256', key).update(`${requestId}:${code}`).digest('hex');

export function codeMatches(key: Buffer, requestId: string, code: string, stored: string): boolean {
  const want = Buffer.from(stored, 'hex');
  const got = Buffer.from(hashCode(key, requestId, code), 'hex');
  return want.length === got.length && timingSafeEqual(want, got);
}
