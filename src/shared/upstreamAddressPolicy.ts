import net from 'node:net';

/**
 * Which addresses the gateway may connect to for a provider call.
 *
 * A provider's base URL is staff input, and the gateway sends customers'
 * prompts and a provider credential to it, so the address actually connected
 * to is checked: after DNS resolution (a name that resolves to 127.0.0.1 is
 * 127.0.0.1), before any packet is sent. Setting `UPSTREAM_ALLOWED_HOSTS`
 * (comma-separated) lists what is allowed:
 *   `*`                   any public address (the default)
 *   `api.openai.com`      that host name, whatever it resolves to
 *   `*.example.com`       any name below example.com
 *   `10.1.2.3`, `fd00::1` that address
 *   `10.0.0.0/8`          that range
 * Loopback, private, link-local (incl. the cloud metadata address
 * 169.254.169.254), shared, multicast and reserved addresses are refused
 * unless an entry names them (by address, range or host name); `*` does not.
 */

export const ADDRESS_NOT_ALLOWED = 'UPSTREAM_ADDRESS_NOT_ALLOWED';

export class UpstreamAddressNotAllowedError extends Error {
  readonly code = ADDRESS_NOT_ALLOWED;
  constructor() {
    // Deliberately without the host or address: the message can reach logs and, via codes, clients.
    super('upstream address not allowed');
    this.name = 'UpstreamAddressNotAllowedError';
  }
}

const SPECIAL_V4: [string, number][] = [
  ['0.0.0.0', 8], // "this network", incl. 0.0.0.0 which Linux connects to loopback
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // carrier-grade NAT, often the cluster network
  ['127.0.0.0', 8],
  ['169.254.0.0', 16], // link-local, incl. the metadata service 169.254.169.254
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, incl. broadcast
];
const SPECIAL_V6: [string, number][] = [
  ['::', 96], // IPv4-compatible (deprecated), incl. :: and ::1: ::7f00:1 embeds 127.0.0.1
  ['64:ff9b::', 96], // NAT64: embeds an IPv4 address
  ['64:ff9b:1::', 48], // local-use NAT64 (RFC 8215)
  ['100::', 64], // discard
  ['2001::', 32], // Teredo: embeds an IPv4 address
  ['2001:db8::', 32], // documentation
  ['2002::', 16], // 6to4: embeds an IPv4 address
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['ff00::', 8], // multicast
];

const special = new net.BlockList();
for (const [a, p] of SPECIAL_V4) special.addSubnet(a, p, 'ipv4');
for (const [a, p] of SPECIAL_V6) special.addSubnet(a, p, 'ipv6');

/** An IP address in one form: IPv4-mapped IPv6 (::ffff:127.0.0.1) as the IPv4 address it is; brackets dropped. */
export function canonicalAddress(address: string): { address: string; family: 'ipv4' | 'ipv6' } | null {
  const bare = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
  const kind = net.isIP(bare);
  if (kind === 4) return { address: bare, family: 'ipv4' };
  if (kind !== 6) return null;
  const v6 = new net.SocketAddress({ address: bare, family: 'ipv6' }).address.toLowerCase();
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(v6);
  return mapped ? { address: mapped[1]!, family: 'ipv4' } : { address: v6, family: 'ipv6' };
}

/** Loopback, private, link-local, shared, multicast, reserved or documentation address. */
export function isNonPublicAddress(address: string): boolean {
  const c = canonicalAddress(address);
  return c === null || special.check(c.address, c.family);
}

const HOST_NAME = /^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

/** An address or CIDR range entry as the subnet it names (an IPv4-mapped one as its IPv4 subnet), or null. */
function parseRange(entry: string): { address: string; family: 'ipv4' | 'ipv6'; prefix: number } | null {
  const slash = entry.indexOf('/');
  const base = slash === -1 ? entry : entry.slice(0, slash);
  const c = canonicalAddress(base);
  if (!c) return null;
  const written = net.isIPv6(base.replace(/^\[|\]$/g, '')) ? 128 : 32;
  let prefix = written;
  if (slash !== -1) {
    const p = entry.slice(slash + 1);
    if (!/^\d{1,3}$/.test(p) || Number(p) > written) return null;
    prefix = Number(p);
  }
  if (written === 128 && c.family === 'ipv4') {
    if (prefix < 96) return null;
    prefix -= 96;
  }
  return { ...c, prefix };
}

/** Why an `UPSTREAM_ALLOWED_HOSTS` entry is invalid, or null when it is valid. */
export function allowedHostEntryProblem(entry: string): string | null {
  if (entry === '*' || parseRange(entry)) return null;
  if (entry.includes('/') && canonicalAddress(entry.slice(0, entry.indexOf('/')))) return `"${entry}" is not a valid address range (CIDR)`;
  return HOST_NAME.test(entry.toLowerCase()) ? null : `"${entry}" is not a host name, address, range or *`;
}

export interface UpstreamAddressPolicy {
  /** May the gateway connect to `address`, reached through the URL host `hostname`? */
  allows(hostname: string, address: string): boolean;
}

export function upstreamAddressPolicy(entries: readonly string[]): UpstreamAddressPolicy {
  const anyPublic = entries.includes('*');
  const names = new Set<string>();
  const suffixes: string[] = [];
  const listed = new net.BlockList();
  for (const raw of entries) {
    const entry = raw.trim().toLowerCase();
    if (entry === '*' || entry === '') continue;
    const problem = allowedHostEntryProblem(entry);
    if (problem) throw new Error(`UPSTREAM_ALLOWED_HOSTS: ${problem}`);
    const range = parseRange(entry);
    if (range) listed.addSubnet(range.address, range.prefix, range.family);
    else if (entry.startsWith('*.')) suffixes.push(entry.slice(1));
    else names.add(entry);
  }
  return {
    allows(hostname, address) {
      const c = canonicalAddress(address);
      if (!c) return false;
      const host = hostname.toLowerCase().replace(/\.$/, '');
      if (names.has(host) || suffixes.some((s) => host.endsWith(s))) return true;
      if (listed.check(c.address, c.family)) return true;
      return anyPublic && !special.check(c.address, c.family);
    },
  };
}
