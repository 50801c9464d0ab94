import { EventEmitter } from 'node:events';
import { Agent, errors, type Dispatcher } from 'undici';
import type { Config } from '../config';
import type { Route } from './routingTable';

/**
 * The pooled keep-alive client for provider calls. Timeouts: connect, first
 * byte (response headers) and idle (no body data for that long).
 */
export function createUpstreamAgent(config: Config): Agent {
  return new Agent({
    connect: { timeout: config.upstream.connectTimeoutMs },
    headersTimeout: config.upstream.firstByteTimeoutMs,
    bodyTimeout: config.upstream.idleTimeoutMs,
    keepAliveTimeout: 30_000,
    connections: config.upstream.maxConnections,
    pipelining: 1,
  });
}

export type UpstreamFailure =
  | { kind: 'unreachable'; code: string } // connection refused/reset, DNS, TLS, dropped before headers
  | { kind: 'timeout'; code: string }; // no headers in time

export interface UpstreamCall {
  response: Dispatcher.ResponseData;
  startedAt: number;
}

/** Reads the credential from the environment variable the provider names; never stored or logged. */
function credential(route: Route, env: Record<string, string | undefined>): string | undefined {
  return route.apiKeyEnv ? env[route.apiKeyEnv] : undefined;
}

/**
 * Cancels an upstream call when the client goes away. undici accepts an
 * EventEmitter that emits 'abort' in place of an AbortSignal (documented);
 * Node 20's AbortController/EventTarget pair cost more per request than the
 * rest of the call set-up in profiles, and nearly every request ends without
 * being cancelled.
 */
export class UpstreamCancel extends EventEmitter {
  aborted = false;

  abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    this.emit('abort');
  }
}

/** A route's base URL split once into origin and path prefix (parsing it per request showed in profiles). */
const parsedBases = new Map<string, { origin: string; basePath: string }>();

function baseOf(baseUrl: string): { origin: string; basePath: string } {
  let parsed = parsedBases.get(baseUrl);
  if (!parsed) {
    const url = new URL(baseUrl);
    parsed = { origin: url.origin, basePath: url.pathname.replace(/\/$/, '') };
    if (parsedBases.size >= 1_000) parsedBases.clear();
    parsedBases.set(baseUrl, parsed);
  }
  return parsed;
}

export async function callUpstream(
  agent: Agent,
  route: Route,
  path: string,
  body: string,
  signal: UpstreamCancel,
  env: Record<string, string | undefined>,
): Promise<UpstreamCall | UpstreamFailure> {
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
  const key = credential(route, env);
  if (key) headers.authorization = `Bearer ${key}`;
  const startedAt = performance.now();
  try {
    const { origin, basePath } = baseOf(route.baseUrl);
    const response = await agent.request({ origin, path: `${basePath}${path}`, method: 'POST', headers, body, signal });
    // Readers see body errors through iteration; an abort that lands after the
    // reader is gone must not surface as an uncaught stream error.
    response.body.on('error', () => undefined);
    return { response, startedAt };
  } catch (err) {
    return classify(err);
  }
}

export function classify(err: unknown): UpstreamFailure {
  if (err instanceof errors.HeadersTimeoutError) return { kind: 'timeout', code: 'upstream_timeout' };
  if (err instanceof errors.ConnectTimeoutError) return { kind: 'unreachable', code: 'upstream_connect_timeout' };
  const code = (err as { code?: string })?.code;
  return { kind: 'unreachable', code: typeof code === 'string' ? code.toLowerCase() : 'upstream_unreachable' };
}

export function isBodyTimeout(err: unknown): boolean {
  return err instanceof errors.BodyTimeoutError;
}
