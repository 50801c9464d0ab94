/**
 * Cookie and analytics consent in the customer console (issue 26;
 * docs/customer-console.md#cookies-and-analytics): the choice a browser
 * carries in its cookie, how it is read back, and how it is squared with
 * the user's consent records.
 *
 * Strictly necessary cookies (the session, form protection, this choice
 * itself) need no consent; every other use is an optional category here.
 */

/** The optional categories a user may agree to; the cookie and the form accept these and nothing else. */
export const OPTIONAL_CATEGORIES = ['analytics'] as const;
export type ConsentCategory = (typeof OPTIONAL_CATEGORIES)[number];

/** The policy version a choice is made under when staff have published none yet. */
export const INITIAL_POLICY_VERSION = '2026-11-01';

/** __Host-: Secure, Path=/, no Domain, so a sibling subdomain cannot plant a consent the user never gave. */
export const CONSENT_COOKIE = '__Host-mr_consent';
export const CONSENT_COOKIE_MAX_AGE_S = 365 * 86_400;
/** Longer than any valid value (40 + 1 + 9 + 1 + 12); anything longer is not read at all. */
export const MAX_CONSENT_COOKIE = 80;
/** The consent_records purpose of console cookie choices. */
export const COOKIE_PURPOSE = 'cookies';

/** A cookie's time may run this far ahead of the server's clock (clock skew between instances). */
const MAX_FUTURE_MS = 5 * 60_000;
const NECESSARY_ONLY = 'necessary';
const VERSION = /^[0-9A-Za-z][0-9A-Za-z._-]{0,39}$/;
const COOKIE_VALUE = /^([0-9A-Za-z][0-9A-Za-z._-]{0,39})~([a-z+]{1,40})~([0-9]{1,12})$/;

export interface ConsentChoice {
  /** The privacy policy version in force when the choice was made. */
  version: string;
  /** The optional categories agreed to, sorted; empty: strictly necessary cookies only. */
  categories: ConsentCategory[];
  /** When the choice was made (whole seconds). */
  at: Date;
}

const isCategory = (c: string): c is ConsentCategory => (OPTIONAL_CATEGORIES as readonly string[]).includes(c);
const sorted = (cs: readonly ConsentCategory[]): ConsentCategory[] => [...new Set(cs)].sort();

/** The categories, if every one is known and none repeats; null otherwise. */
export function knownCategories(cs: readonly string[]): ConsentCategory[] | null {
  if (cs.length > OPTIONAL_CATEGORIES.length || new Set(cs).size !== cs.length || !cs.every(isCategory)) return null;
  return sorted(cs as ConsentCategory[]);
}

/** The cookie's value for a choice: `<version>~<categories joined by + | necessary>~<unix seconds>`. */
export function formatConsentCookie(c: ConsentChoice): string {
  return `${c.version}~${c.categories.length ? sorted(c.categories).join('+') : NECESSARY_ONLY}~${Math.floor(c.at.getTime() / 1000)}`;
}

/**
 * The choice a cookie value holds, or null (no choice: the banner shows and
 * nothing optional happens) for anything this server would not have written:
 * too long, another shape, an unknown or repeated category, a time before
 * 2020 or in the future.
 */
export function parseConsentCookie(value: string | null | undefined, now: Date): ConsentChoice | null {
  if (typeof value !== 'string' || value.length > MAX_CONSENT_COOKIE) return null;
  const m = COOKIE_VALUE.exec(value);
  if (!m) return null;
  const [, version, cats, secs] = m as unknown as [string, string, string, string];
  const categories = cats === NECESSARY_ONLY ? [] : knownCategories(cats.split('+'));
  if (!categories) return null;
  const at = new Date(Number(secs) * 1000);
  if (at.getTime() < Date.UTC(2020, 0, 1) || at.getTime() > now.getTime() + MAX_FUTURE_MS) return null;
  return { version, categories, at };
}

/** The categories a posted form chose (`choice` = analytics | necessary), or null. */
export function categoriesFromForm(choice: unknown): ConsentCategory[] | null {
  if (choice === NECESSARY_ONLY) return [];
  if (choice === 'analytics') return ['analytics'];
  return null;
}

/** The policy version choices are made under now: the latest published, else the initial one. */
export function policyVersionFrom(latestPublished: string | null | undefined): string {
  return latestPublished && VERSION.test(latestPublished) ? latestPublished : INITIAL_POLICY_VERSION;
}

export const analyticsAllowed = (c: ConsentChoice | null): boolean => !!c && c.categories.includes('analytics');

const sameChoice = (a: Pick<ConsentChoice, 'version' | 'categories'>, b: Pick<ConsentChoice, 'version' | 'categories'>) =>
  a.version === b.version && sorted(a.categories).join('+') === sorted(b.categories).join('+');

/**
 * What a signed-in page view does with the browser's choice and the user's
 * latest record: the newer one stands. A choice made in this browser after
 * the latest record (before signing in, or no record yet) is recorded; a
 * record newer than the browser's choice (made in another browser) replaces
 * the cookie, so a withdrawal anywhere stops analytics everywhere. Each
 * record comes from a real choice, so two browsers cannot make records in
 * a loop.
 */
export function reconcile(cookie: ConsentChoice | null, latest: ConsentChoice | null): { record: ConsentChoice | null; cookie: ConsentChoice | null } {
  if (!cookie) return { record: null, cookie: latest };
  if (!latest) return { record: cookie, cookie: null };
  if (sameChoice(cookie, latest)) return { record: null, cookie: null };
  return cookie.at.getTime() > latest.at.getTime() ? { record: cookie, cookie: null } : { record: null, cookie: latest };
}

/**
 * The route pattern (as registered, e.g. `/app/keys/:id`) that a request
 * path matches, or null. Only literal and `:param` segments are understood;
 * a pattern with other syntax matches nothing, so a page is never named by
 * what the browser sent. Case-insensitive with an optional trailing slash,
 * as Express routes by default.
 */
export function routePatternOf(path: string, patterns: readonly string[]): string | null {
  if (path.length > 512) return null;
  const parts = path.replace(/\/$/, '').toLowerCase().split('/');
  for (const p of patterns) {
    const want = p.toLowerCase().split('/');
    if (want.length !== parts.length) continue;
    const ok = want.every((w, i) => {
      const got = parts[i]!;
      if (/^:[A-Za-z_][A-Za-z0-9_]*$/.test(w)) return got.length > 0;
      return /^[a-z0-9_-]*$/.test(w) && w === got;
    });
    if (ok) return p;
  }
  return null;
}

/** Where to go after a choice: the posted path if it is exactly one of `allowed`, else the overview. */
export function safeReturnPath(posted: unknown, allowed: readonly string[]): string {
  return typeof posted === 'string' && posted.length <= 64 && allowed.includes(posted) ? posted : '/app';
}

/** The UTC day of an instant, as page_view_counts keys it. */
export const utcDay = (now: Date): string => now.toISOString().slice(0, 10);
