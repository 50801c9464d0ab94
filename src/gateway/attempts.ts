import type { ForwarderDeps } from './forwarder';
import type { Meter } from './meter';
import type { Route } from './routingTable';
import type { UpstreamCall, UpstreamCancel, UpstreamFailure } from './upstream';

/**
 * One route's attempt in a fallback loop (Forwarder and the Anthropic handler):
 * what its answer means for the request. Nothing has reached the client yet,
 * so a failure other than the last route's is retried on the next route.
 */
export type CallFailure = 'unreachable' | 'timeout' | 'upstream_5xx' | 'upstream_auth';
export interface AttemptFailure {
  failure: CallFailure;
  code: string;
  upstreamStatus?: number;
}

/** The error code of a provider's final 5xx: `upstream_<status>`. */
export const upstreamStatusCode = (status: number): string => `upstream_${status}`;

/**
 * Judges one attempt's result: the call to relay, the failure to answer with,
 * or null to try the next route. Adds the attempt's time to meter.upstreamMs
 * when the attempt is given up; a refused credential (401/403) is counted and
 * logged, its answer never relayed. `serverErrorCode` names a final 5xx.
 */
export function judgeAttempt(
  deps: Pick<ForwarderDeps, 'logger' | 'onUpstreamAuthFailure'>,
  result: UpstreamCall | UpstreamFailure,
  route: Route,
  isLast: boolean,
  attemptStart: number,
  signal: UpstreamCancel,
  meter: Meter,
  serverErrorCode: (status: number) => string,
): UpstreamCall | AttemptFailure | null {
  if (signal.aborted) {
    if ('response' in result) result.response.body.destroy();
    return { failure: 'unreachable', code: 'client_closed' };
  }
  if ('kind' in result) {
    meter.upstreamMs = (meter.upstreamMs ?? 0) + (performance.now() - attemptStart);
    // A timeout waiting for headers is not retried elsewhere: it already cost the client the timeout.
    if (result.kind === 'timeout' || isLast) return { failure: result.kind, code: result.code };
    deps.logger.warn({ requestId: meter.requestId, provider: route.provider, code: result.code }, 'upstream unreachable; trying the next route');
    return null;
  }
  const status = result.response.statusCode;
  // A provider refusing our credential is our problem, not the client's: its answer
  // (which may describe our account with it) is never relayed, only counted.
  const authRefused = status === 401 || status === 403;
  if (authRefused) {
    deps.onUpstreamAuthFailure?.(route.provider, status);
    deps.logger.warn({ requestId: meter.requestId, provider: route.provider, status }, 'upstream refused the gateway credential');
  }
  // (Anthropic's 529 "overloaded" is a 5xx in all but number.)
  if ((status >= 500 || status === 429 || authRefused) && !isLast) {
    result.response.body.destroy();
    meter.upstreamMs = (meter.upstreamMs ?? 0) + (performance.now() - attemptStart);
    deps.logger.warn({ requestId: meter.requestId, provider: route.provider, status }, 'upstream failed; trying the next route');
    return null;
  }
  if (status >= 500 || authRefused) {
    result.response.body.destroy();
    meter.upstreamMs = (meter.upstreamMs ?? 0) + (performance.now() - attemptStart);
    return authRefused
      ? { failure: 'upstream_auth', code: 'upstream_auth_failed', upstreamStatus: status }
      : { failure: 'upstream_5xx', code: serverErrorCode(status), upstreamStatus: status };
  }
  return result;
}
