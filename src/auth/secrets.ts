import { hash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * API keys and staff tokens are 256-bit random secrets. Because they carry that
 * much entropy a single SHA-256 is a safe lookup hash (no slow KDF needed, and
 * the gateway can authenticate with one indexed lookup). Only the hash and a
 * short display prefix are stored; the secret itself is shown once.
 */
export type SecretKind = 'api_key' | 'staff_token';

const PREFIX: Record<SecretKind, string> = { api_key: 'mr-', staff_token: 'mrs-' };
const DISPLAY_CHARS = 8;

export interface IssuedSecret {
  secret: string;
  hash: string;
  /** Safe to show and store: the kind prefix plus the first characters. */
  displayPrefix: string;
}

export function issueSecret(kind: SecretKind): IssuedSecret {
  const secret = PREFIX[kind] + randomBytes(32).toString('base64url');
  return { secret, hash: hashSecret(secret), displayPrefix: displayPrefix(secret, kind) };
}

export function hashSecret(secret: string): string {
  // One-shot hash (Node 20.12+): half the cost of createHash().update().digest(), and the gateway hashes every request's key.
  return hash('sha256', secret, 'hex');
}

export function displayPrefix(secret: string, kind: SecretKind): string {
  return secret.slice(0, PREFIX[kind].length + DISPLAY_CHARS);
}

export function looksLike(secret: string, kind: SecretKind): boolean {
  return secret.startsWith(PREFIX[kind]) && secret.length > PREFIX[kind].length + DISPLAY_CHARS;
}

export function hashesEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a, 'hex');
  const bb = Buffer.from(b, 'hex');
  return ab.length === bb.length && timingSafeEqual(ab, bb);
}
