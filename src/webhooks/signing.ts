import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';

/**
 * Standard Webhooks signing, through the `standardwebhooks` package (the
 * specification's own reference library for TypeScript) rather than our own
 * HMAC code: receivers verify with the same library in any language, and the
 * header names, secret format and signature scheme stay the specification's.
 */

/** A new endpoint secret in the specification's form: `whsec_` and 32 random bytes in base64. */
export function newEndpointSecret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`;
}

/** What may be shown of a secret after it was created: enough to tell two apart. */
export function secretPrefix(secret: string): string {
  return secret.slice(0, 'whsec_'.length + 6);
}

export interface SignedHeaders {
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
}

/**
 * The three headers of one attempt. The id is the message's (the same on every
 * retry, so receivers can drop duplicates); the timestamp is the attempt's, so
 * a receiver's replay window applies to each attempt.
 */
export function signedHeaders(secret: string, messageId: string, at: Date, body: string): SignedHeaders {
  const signature = new Webhook(secret).sign(messageId, at, body);
  return { 'webhook-id': messageId, 'webhook-timestamp': String(Math.floor(at.getTime() / 1000)), 'webhook-signature': signature };
}
