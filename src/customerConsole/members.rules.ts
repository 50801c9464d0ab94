import { CONSOLE_ROLES, MAX_EMAIL, type ConsoleRole } from './customerConsole.rules';

/**
 * Members of an account (issue 26; docs/customer-console.md#members): who may
 * be invited, removed or given another role, and the bounds of the page. No I/O.
 */

/** An invitation's link works this long. */
export const INVITATION_DAYS = 7;
/** Unexpired, unanswered invitations an account may have at once: an owner cannot turn the console into a mail cannon. */
export const MAX_OPEN_INVITATIONS = 50;
/** Members (and invitations) shown on one page. */
export const MAX_MEMBERS_LISTED = 500;
/** A member's display name, as typed when accepting. */
export const MAX_MEMBER_NAME = 200;

/** The role a form field names, or null. */
export function roleOf(v: unknown): ConsoleRole | null {
  return typeof v === 'string' && (CONSOLE_ROLES as readonly string[]).includes(v) ? (v as ConsoleRole) : null;
}

/** Why an address cannot be invited (shape and length), or null. Compared case-insensitively everywhere else. */
export function inviteEmailProblem(email: string): string | null {
  if (email.length === 0) return 'enter the email address to invite';
  if (email.length > MAX_EMAIL) return `the email address must have at most ${MAX_EMAIL} characters`;
  if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(email)) return 'that is not an email address';
  return null;
}

/** Why a name typed when accepting is refused, or null. */
export function memberNameProblem(name: string): string | null {
  if (name.length === 0) return 'enter your name';
  if (name.length > MAX_MEMBER_NAME) return `the name must have at most ${MAX_MEMBER_NAME} characters`;
  // Control characters would reach emails and pages of colleagues.
  if (/\p{Cc}/u.test(name)) return 'the name must not contain control characters';
  return null;
}

/** The invitation token's shape (32 random bytes, base64url): anything else is not looked up. */
export const invitationTokenShapeOk = (token: string): boolean => /^[A-Za-z0-9_-]{43}$/.test(token);

export const invitationExpiry = (now: Date): Date => new Date(now.getTime() + INVITATION_DAYS * 86_400_000);

export type InvitationState = 'open' | 'expired' | 'accepted' | 'revoked';

export function invitationState(inv: { accepted_at: Date | null; revoked_at: Date | null; expires_at: Date }, now: Date): InvitationState {
  if (inv.accepted_at) return 'accepted';
  if (inv.revoked_at) return 'revoked';
  return inv.expires_at.getTime() > now.getTime() ? 'open' : 'expired';
}

/** Whether one more invitation fits next to `openCount` unexpired, unanswered ones. */
export const invitationFits = (openCount: number): boolean => openCount < MAX_OPEN_INVITATIONS;

/**
 * The account always keeps an owner: removing an owner (yourself included)
 * needs another owner to remain. `owners` counts the account's active owners,
 * the target included.
 */
export function removalProblem(target: { role: ConsoleRole }, owners: number): string | null {
  if (target.role === 'owner' && owners <= 1) return 'the account must keep at least one owner: make another member an owner first';
  return null;
}

/** As removalProblem, for taking the owner role away; any other change is allowed. */
export function roleChangeProblem(target: { role: ConsoleRole }, newRole: ConsoleRole, owners: number): string | null {
  if (target.role === 'owner' && newRole !== 'owner' && owners <= 1) return 'the account must keep at least one owner: make another member an owner first';
  return null;
}

/** The outbox key of an invitation's email: one message per invitation, however often the send is retried. */
export const invitationEmailKey = (invitationId: string): string => `customer-invitation:${invitationId}`;

/** The invitation email. The link carries the token; nothing else in it is secret. */
export function invitationEmail(i: { accountName: string; inviterName: string; role: ConsoleRole; link: string; expiresAt: Date }): { subject: string; body: string } {
  return {
    subject: `You are invited to ${i.accountName} on MixRoute`,
    body: [
      `${i.inviterName} invited you to the MixRoute account ${i.accountName}, as ${i.role}.`,
      '',
      'To accept, open this link, choose your name and a password:',
      i.link,
      '',
      `The link works once, until ${i.expiresAt.toISOString()} (UTC). If you did not expect this email, ignore it: nothing happens unless the link is opened and accepted.`,
    ].join('\n'),
  };
}
