/**
 * The customer console's pure rules: roles, input bounds, the per-email
 * throttle identity's shape, how a sign-in's device and address are shown,
 * and the month boundaries of the overview. No I/O.
 */
export type ConsoleRole = 'owner' | 'admin' | 'developer' | 'billing';
export const CONSOLE_ROLES: readonly ConsoleRole[] = ['owner', 'admin', 'developer', 'billing'];

/**
 * The console's areas and the roles that may use each (issue 26): developers
 * work with keys and usage, billing members with invoices, top-ups and the
 * balance; owners and admins with everything. Every member sees the overview
 * and where they are signed in.
 */
export type ConsoleArea = 'overview' | 'security' | 'keys' | 'usage' | 'billing' | 'alerts' | 'privacy' | 'members' | 'members_manage';
const AREA_ROLES: Record<ConsoleArea, readonly ConsoleRole[]> = {
  overview: CONSOLE_ROLES,
  security: CONSOLE_ROLES,
  privacy: CONSOLE_ROLES,
  keys: ['owner', 'admin', 'developer'],
  usage: ['owner', 'admin', 'developer', 'billing'],
  billing: ['owner', 'admin', 'billing'],
  alerts: ['owner', 'admin', 'developer', 'billing'],
  // Admins see who has access; only owners change it (invite, remove, roles).
  members: ['owner', 'admin'],
  members_manage: ['owner'],
};

/** Whether a member with `role` may see and act in `area`. */
export const mayUse = (role: ConsoleRole, area: ConsoleArea): boolean => AREA_ROLES[area].includes(role);

/** How long a customer session lasts after sign-in. */
export const SESSION_HOURS = 8;

/** Longest accepted email (RFC 5321's path limit) and password; longer input is refused before any lookup or hash. */
export const MAX_EMAIL = 254;
export const MAX_PASSWORD = 1024;
/** bcrypt reads 72 bytes; a password set here is at least 12 characters and at most this. */
export const MIN_PASSWORD = 12;
export const MAX_SET_PASSWORD = 72;

/** A User-Agent kept with a session or a sign-in is cut to this length. */
export const MAX_USER_AGENT = 512;

/** Why a new password is refused, or null when it is acceptable. */
export function passwordProblem(password: string): string | null {
  if (password.length < MIN_PASSWORD) return `the password must have at least ${MIN_PASSWORD} characters`;
  if (new TextEncoder().encode(password).length > MAX_SET_PASSWORD) return `the password must have at most ${MAX_SET_PASSWORD} bytes (bcrypt ignores the rest)`;
  return null;
}

/** The sign-in form's fields are usable: an email-looking, bounded address and a bounded password. */
export function signInInputOk(email: string, password: string): boolean {
  return email.length > 0 && email.length <= MAX_EMAIL && /^[^@\s]+@[^@\s]+$/.test(email) && password.length > 0 && password.length <= MAX_PASSWORD;
}

/**
 * A coarse form of a client address for display and for the session row:
 * the first three bytes of an IPv4 address (203.0.113.x), the first four
 * groups of an IPv6 address (2001:db8:1:2::/64 as 2001:db8:1:2:…). No lookup.
 */
export function ipPrefix(ip: string | null | undefined): string | null {
  if (!ip) return null;
  const v4 = /^(?:::ffff:)?(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/i.exec(ip);
  if (v4) return `${v4[1]}.${v4[2]}.${v4[3]}.x`;
  if (ip.includes(':')) {
    const [head] = ip.split('::');
    const groups = (head ?? '').split(':').filter(Boolean);
    const full = ip.includes('::') ? [...groups, ...Array(Math.max(0, 4 - groups.length)).fill('0')] : groups;
    return `${full.slice(0, 4).join(':')}:…`;
  }
  return null;
}

/**
 * The browser and system a User-Agent names, coarsely ("Firefox on
 * Windows"), for "where you are signed in". Unknown parts say so; the raw
 * string is never shown.
 */
export function deviceOf(userAgent: string | null | undefined): string {
  const ua = userAgent ?? '';
  if (!ua) return 'Unknown device';
  const browser = /Edg\//.test(ua)
    ? 'Edge'
    : /OPR\/|Opera/.test(ua)
      ? 'Opera'
      : /Firefox\//.test(ua)
        ? 'Firefox'
        : /Chrom(e|ium)\//.test(ua)
          ? 'Chrome'
          : /Safari\//.test(ua) && /Version\//.test(ua)
            ? 'Safari'
            : /curl\//i.test(ua)
              ? 'curl'
              : /node|undici/i.test(ua)
                ? 'a script'
                : 'a browser';
  const os = /iPhone|iPad|iPod/.test(ua)
    ? 'iOS'
    : /Android/.test(ua)
      ? 'Android'
      : /Windows/.test(ua)
        ? 'Windows'
        : /Mac OS X|Macintosh/.test(ua)
          ? 'macOS'
          : /CrOS/.test(ua)
            ? 'ChromeOS'
            : /Linux/.test(ua)
              ? 'Linux'
              : null;
  return os ? `${browser} on ${os}` : browser.charAt(0).toUpperCase() + browser.slice(1);
}

/** The first instants (UTC) of this month, last month and next month. */
export function monthBounds(now: Date): { lastMonth: Date; thisMonth: Date; nextMonth: Date } {
  const y = now.getUTCFullYear();
  const m = now.getUTCMonth();
  return { lastMonth: new Date(Date.UTC(y, m - 1, 1)), thisMonth: new Date(Date.UTC(y, m, 1)), nextMonth: new Date(Date.UTC(y, m + 1, 1)) };
}
