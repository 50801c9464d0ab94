import { EventEmitter } from 'node:events';
import { Agent, errors, type Dispatcher } from 'undici';
import { PROVIDER_KEY_ENV, type Config } from '../config';
import { readCapped, UpstreamResponseTooLarge } from './responseLimit';
import type { Route } from './routingTable';
import { guardedConnector } from './upstreamAddress';
import { upstreamAddressPolicy } from '../shared/upstreamAddressPolicy';

/**
 * The pooled keep-alive client for provider calls. Timeouts: connect, first
 * byte (response headers) and idle (no body data for that long). Every
 * connection goes through the address check (UPSTREAM_ALLOWED_HOSTS).
 */
export function createUpstreamAgent(config: Pick<Config, 'upstream'>): Agent {
  return new Agent({
    connect: guardedConnector(upstreamAddressPolicy(config.upstream.allowedHosts), { timeout: config.upstream.connectTimeoutMs }),
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

/** A provider's answer: its body read as it arrives (`for await`) or whole (`bytes`). */
export interface UpstreamResponse {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  body: AsyncIterable<Uint8Array> & { bytes(): Promise<Buffer>; destroy(): void };
}

export interface UpstreamCall {
  response: UpstreamResponse;
  startedAt: number;
}

/**
 * The credential from the variable the provider names, only if that name is
 * a PROVIDER_*_API_KEY one (whatever a database row says); never stored or logged.
 */
function credential(route: Route, env: Record<string, string | undefined>): string | undefined {
  return route.apiKeyEnv && PROVIDER_KEY_ENV.test(route.apiKeyEnv) ? env[route.apiKeyEnv] : undefined;
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

/** One provider call: where it goes, what it sends, and the client's cancellation. */
export interface UpstreamRequest {
  agent: Agent;
  route: Route;
  /** The endpoint's path below the provider's base URL. */
  path: string;
  body: string;
  signal: UpstreamCancel;
  env: Record<string, string | undefined>;
  /** A body read whole (`bytes`) past this many bytes fails with UpstreamResponseTooLarge. */
  maxResponseBytes?: number;
  /** How the credential goes: Authorization: Bearer (default) or Anthropic's x-api-key. */
  auth?: 'bearer' | 'x-api-key';
  /** More request headers (anthropic-version, anthropic-beta). */
  headers?: Record<string, string>;
}

function requestHeaders(route: Route, env: Record<string, string | undefined>, auth?: 'bearer' | 'x-api-key', extra?: Record<string, string>): Record<string, string> {
  const headers: Record<string, string> = extra
    ? { ...extra, 'content-type': 'application/json', accept: 'application/json, text/event-stream' }
    : { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
  const key = credential(route, env);
  if (key && auth === 'x-api-key') headers['x-api-key'] = key;
  else if (key) headers.authorization = `Bearer ${key}`;
  return headers;
}

/**
 * Calls the provider and hands back its answer as soon as the headers are in;
 * the body is read as it arrives (streams).
 */
export async function callUpstream({ agent, route, path, body, signal, env, maxResponseBytes = Infinity, auth, headers: extra }: UpstreamRequest): Promise<UpstreamCall | UpstreamFailure> {
  const headers = requestHeaders(route, env, auth, extra);
  const startedAt = performance.now();
  try {
    const { origin, basePath } = baseOf(route.baseUrl);
    const response = await agent.request({ origin, path: `${basePath}${path}`, method: 'POST', headers, body, signal });
    // Readers see body errors through iteration; an abort that lands after the
    // reader is gone must not surface as an uncaught stream error.
    response.body.on('error', () => undefined);
    const readable = response.body;
    return {
      response: {
        statusCode: response.statusCode,
        headers: response.headers,
        body: Object.assign(readable, { bytes: () => readCapped(readable, maxResponseBytes) }),
      },
      startedAt,
    };
  } catch (err) {
    return classify(err);
  }
}

/**
 * Calls the provider and hands back its answer once the whole body is in, for
 * answers that are relayed whole anyway (non-streaming requests). It uses
 * undici's handler interface instead of `request`: no body stream, no promise
 * per chunk, a part of the gateway's own time per request. A body that fails
 * after the headers (idle timeout, dropped connection, the client going away)
 * surfaces from `bytes()`, as with a streamed body.
 */
export function callUpstreamWhole({ agent, route, path, body, signal, env, maxResponseBytes = Infinity, auth, headers: extra }: UpstreamRequest): Promise<UpstreamCall | UpstreamFailure> {
  const headers = requestHeaders(route, env, auth, extra);
  const startedAt = performance.now();
  const { origin, basePath } = baseOf(route.baseUrl);
  return new Promise((resolve) => {
    let statusCode = 0;
    let responseHeaders: Record<string, string | string[] | undefined> = {};
    const parts: Buffer[] = [];
    let size = 0;
    let abortCall: ((err: Error) => void) | null = null;
    let settled = false;
    const onCancel = () => abortCall?.(new errors.RequestAbortedError());
    const finish = (value: UpstreamCall | UpstreamFailure) => {
      if (settled) return;
      settled = true;
      signal.off('abort', onCancel);
      resolve(value);
    };
    const answer = (failure: unknown) => {
      const whole = failure === null ? (parts.length === 1 ? parts[0]! : Buffer.concat(parts, size)) : null;
      const bytes = () => (whole ? Promise.resolve(whole) : Promise.reject(failure));
      finish({
        response: {
          statusCode,
          headers: responseHeaders,
          body: {
            bytes,
            destroy: () => undefined,
            async *[Symbol.asyncIterator]() {
              yield await bytes();
            },
          },
        },
        startedAt,
      });
    };
    if (signal.aborted) return finish({ kind: 'unreachable', code: 'client_closed' });
    signal.on('abort', onCancel);
    try {
      agent.dispatch(
        { origin, path: `${basePath}${path}`, method: 'POST', headers, body },
        {
          onConnect(abort: (err?: Error) => void) {
            abortCall = abort;
            if (signal.aborted) abort(new errors.RequestAbortedError());
          },
          onHeaders(status: number, raw: Buffer[]) {
            statusCode = status;
            responseHeaders = headerRecord(raw);
            return true;
          },
          onData(chunk: Buffer) {
            size += chunk.length;
            if (size > maxResponseBytes) {
              // Stop reading now; the answer's bytes() then fails with this error.
              abortCall?.(new UpstreamResponseTooLarge(maxResponseBytes));
              return false;
            }
            parts.push(chunk);
            return true;
          },
          onComplete() {
            answer(null);
          },
          onError(err: Error) {
            // Before the headers, the call failed; after them, its body did.
            if (statusCode === 0) finish(classify(err));
            else answer(err);
          },
          onUpgrade() {},
        } as unknown as Dispatcher.DispatchHandler,
      );
    } catch (err) {
      // undici reports refused requests through onError; should it ever throw instead, the call still fails as a call.
      finish(classify(err));
    }
  });
}

/** Lower-case header names to values, from undici's flat [name, value, ...] list. */
function headerRecord(raw: Buffer[]): Record<string, string | string[] | undefined> {
  const out: Record<string, string | string[] | undefined> = {};
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!.toString('latin1').toLowerCase();
    const value = raw[i + 1]!.toString('latin1');
    const seen = out[name];
    out[name] = seen === undefined ? value : Array.isArray(seen) ? [...seen, value] : [seen, value];
  }
  return out;
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
