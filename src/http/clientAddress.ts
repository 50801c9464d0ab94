import type { IncomingMessage } from 'node:http';
import proxyaddr from 'proxy-addr';

/**
 * The client's address under the TRUSTED_PROXIES rule, shared by the gateway
 * and the admin server's public routes: X-Forwarded-For is believed only when
 * the peer is a configured proxy, and then only up to the first untrusted hop;
 * any other peer is the source as it is, whatever headers it sends.
 */
export function clientAddressOf(trustedProxies: readonly string[]): (req: IncomingMessage) => string | null {
  const trust = proxyaddr.compile([...trustedProxies]);
  // proxy-addr parses the peer's address on every call; whether a peer is a trusted
  // proxy is known from its address alone, so it is decided once per address, and an
  // untrusted peer (every peer when no proxy is configured) is the source as it is.
  const peerTrusted = new Map<string, boolean>();
  return (req) => {
    const peer = req.socket.remoteAddress;
    if (!peer) return null;
    let trusted = peerTrusted.get(peer);
    if (trusted === undefined) {
      trusted = trustedProxies.length > 0 && trust(peer, 0);
      if (peerTrusted.size >= 10_000) peerTrusted.clear();
      peerTrusted.set(peer, trusted);
    }
    return trusted ? proxyaddr(req, trust) || null : peer;
  };
}
