import { Agent, errors, request, type buildConnector } from 'undici';
import { ADDRESS_NOT_ALLOWED } from '../shared/upstreamAddressPolicy';
import { MAX_RESPONSE_BYTES } from './webhooks.rules';

/**
 * POSTs one delivery attempt. The connector is the gateway's guarded one
 * (src/gateway/upstreamAddress.ts, handed in by the composition root), so an
 * endpoint whose name resolves to a loopback, private or metadata address is
 * refused before a packet is sent, unless WEBHOOK_ALLOWED_HOSTS names it.
 * No redirects are followed (a 3xx is a failed attempt), and at most
 * MAX_RESPONSE_BYTES of the answer are read and thrown away: only the status
 * is kept.
 */
export type AttemptResult = { status: number } | { error: 'timeout' | 'address_not_allowed' | 'connection_failed' };

export interface WebhookSender {
  post(url: string, headers: Record<string, string>, body: string): Promise<AttemptResult>;
  close(): Promise<void>;
}

export function createWebhookSender(opts: { connect: buildConnector.connector; timeoutMs: number }): WebhookSender {
  const agent = new Agent({
    connect: opts.connect,
    headersTimeout: opts.timeoutMs,
    bodyTimeout: opts.timeoutMs,
    // undici follows no redirects unless told to: a 3xx stays a failed attempt.
    connections: 64,
  });
  return {
    async post(url, headers, body) {
      try {
        const res = await request(url, {
          method: 'POST',
          dispatcher: agent,
          headers: { ...headers, 'content-type': 'application/json', 'user-agent': 'MixRoute-Webhooks/1' },
          body,
          signal: AbortSignal.timeout(opts.timeoutMs),
        });
        await res.body.dump({ limit: MAX_RESPONSE_BYTES }).catch(() => undefined);
        return { status: res.statusCode };
      } catch (err) {
        return { error: attemptError(err) };
      }
    },
    close: () => agent.close(),
  };
}

function attemptError(err: unknown): 'timeout' | 'address_not_allowed' | 'connection_failed' {
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if ((e as { code?: string }).code === ADDRESS_NOT_ALLOWED) return 'address_not_allowed';
    if (e instanceof errors.HeadersTimeoutError || e instanceof errors.BodyTimeoutError || e instanceof errors.ConnectTimeoutError) return 'timeout';
    if ((e as Error).name === 'TimeoutError' || (e as Error).name === 'AbortError') return 'timeout';
  }
  return 'connection_failed';
}
