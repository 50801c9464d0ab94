import dns from 'node:dns';
import net, { type LookupFunction } from 'node:net';
import { buildConnector } from 'undici';
import { UpstreamAddressNotAllowedError, type UpstreamAddressPolicy } from '../shared/upstreamAddressPolicy';

/** The policy (src/shared/upstreamAddressPolicy.ts) applied where the gateway connects. */

/**
 * A DNS lookup for net/tls.connect that answers only with allowed addresses,
 * so the socket never reaches a refused one. Handles both the single-answer
 * and the `all` form (Node's happy-eyeballs connect asks for all).
 */
export function checkedLookup(policy: UpstreamAddressPolicy): LookupFunction {
  return (hostname, options, callback) => {
    dns.lookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return (callback as (e: Error) => void)(err);
      const allowed = addresses.filter((a) => policy.allows(hostname, a.address));
      if (allowed.length === 0) return (callback as (e: Error) => void)(new UpstreamAddressNotAllowedError());
      if (options.all) (callback as (e: null, a: dns.LookupAddress[]) => void)(null, allowed);
      else callback(null, allowed[0]!.address, allowed[0]!.family);
    });
  };
}

type ConnectOptions = buildConnector.Options;
type ConnectCallback = buildConnector.Callback;

/**
 * undici's connector with the address check in front: a literal IP in the URL
 * is checked here (net.connect does no lookup for it), a name is checked in the
 * lookup, and the connected socket's peer is checked once more.
 */
export function guardedConnector(policy: UpstreamAddressPolicy, options: buildConnector.BuildOptions): buildConnector.connector {
  const connect = buildConnector({ ...options, lookup: checkedLookup(policy) } as buildConnector.BuildOptions);
  return (opts: ConnectOptions, callback: ConnectCallback) => {
    if (net.isIP(opts.hostname) && !policy.allows(opts.hostname, opts.hostname)) {
      queueMicrotask(() => callback(new UpstreamAddressNotAllowedError(), null));
      return;
    }
    connect(opts, (...args) => {
      const [err, socket] = args;
      if (err || !socket) return callback(err ?? new UpstreamAddressNotAllowedError(), null);
      const peer = socket.remoteAddress;
      if (!peer || !policy.allows(opts.hostname, peer)) {
        socket.destroy();
        return callback(new UpstreamAddressNotAllowedError(), null);
      }
      callback(null, socket);
    });
  };
}
