/**
 * Privacy policy versions, pure (issue 26; docs/customer-console.md#policy-changes):
 * what a version may look like, which version a signed-in user must still
 * acknowledge, and the email an account owner gets for a material one.
 * The bounds are the table's CHECKs (migrations/20261205001100), so a bad
 * value is refused with a message before the database would refuse it.
 */

/** A version string: what staff call it ("2026-12", "v3.1"); it is also part of a workflow id and an outbox key. */
export const VERSION_PATTERN = /^[0-9A-Za-z][0-9A-Za-z._-]{0,39}$/;
export const TITLE_MAX = 200;
export const SUMMARY_MAX = 4000;
export const URL_MAX = 500;
/** Who published it (`staff:{id}`, `cli:{user}`), as the table bounds it. */
export const ACTOR_MAX = 200;
/** Account owners queued per activity call of the email workflow (one statement each). */
export const OWNER_PAGE = 500;

export interface PolicyVersionFacts {
  version: string;
  title: string;
  summary: string;
  url: string | null;
  material: boolean;
}

export const isVersion = (v: string): boolean => VERSION_PATTERN.test(v);

/**
 * Null when `v` is a link customers may be sent to: https only (a notice must
 * not point at a downgraded or script URL), a host, no user name or password
 * (which would hide the real host from the reader), no spaces.
 */
export function urlProblem(v: string): string | null {
  if (v.length > URL_MAX) return `url must be at most ${URL_MAX} characters`;
  if (!v.startsWith('https://')) return 'url must be an https:// address';
  if (/\s/.test(v)) return 'url must not contain spaces';
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    return 'url must be a valid https:// address';
  }
  if (u.protocol !== 'https:' || u.hostname === '') return 'url must be an https:// address';
  if (u.username !== '' || u.password !== '') return 'url must not contain a user name or password';
  return null;
}

/** C0/C1 controls other than the line breaks and tabs a summary may have. */
export const hasControlExceptBreaks = (v: string): boolean =>
  [...v].some((ch) => {
    const c = ch.codePointAt(0)!;
    return (c < 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) || (c >= 0x7f && c <= 0x9f);
  });

/**
 * The version a user must acknowledge: the latest material one, unless they
 * acknowledged it. A newer non-material version changes nothing; acknowledging
 * an older material version does not cover a newer one (it is what changed).
 */
export function versionToAcknowledge<V extends { version: string }>(latestMaterial: V | null, acknowledged: boolean): V | null {
  return latestMaterial && !acknowledged ? latestMaterial : null;
}

/** The outbox key of an owner's email for a version: one email per owner and version, whatever re-runs. */
export const policyEmailPrefix = (version: string) => `policy:${version}:`;
export const policyEmailKey = (version: string, userId: string) => `${policyEmailPrefix(version)}${userId}`;

/** The email an account owner gets for a material version. */
export function policyEmail(v: Pick<PolicyVersionFacts, 'version' | 'title' | 'summary' | 'url'>): { subject: string; body: string } {
  return {
    subject: `Our privacy policy changed: ${v.title} (version ${v.version})`,
    body: [
      `We have published version ${v.version} of our privacy policy: ${v.title}.`,
      '',
      'What changed:',
      v.summary,
      '',
      v.url ? `Read the full policy: ${v.url}` : 'The full policy is in your MixRoute console.',
      '',
      'You get this email as an owner of a MixRoute account. Members of your account see a notice when they next sign in to the console.',
    ].join('\n'),
  };
}
