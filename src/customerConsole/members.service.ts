import { createHash, randomBytes } from 'node:crypto';
import bcrypt from 'bcryptjs';
import type { Clock } from '../clock';
import type { Config } from '../config';
import type { Db, Trx } from '../db/knex';
import { ConflictError, ForbiddenError, GoneError, NotFoundError, ValidationError } from '../errors';
import { createMailer, type Mailer } from '../notify/mailer';
import { signInAttemptsRepo } from '../staff/staff.data';
import type { CustomerSession } from './customerConsole.service';
import { mayUse, passwordProblem, type ConsoleRole } from './customerConsole.rules';
import * as data from './members.data';
import {
  invitationEmail,
  invitationEmailKey,
  invitationExpiry,
  invitationFits,
  invitationState,
  invitationTokenShapeOk,
  inviteEmailProblem,
  MAX_MEMBERS_LISTED,
  MAX_OPEN_INVITATIONS,
  memberNameProblem,
  removalProblem,
  roleChangeProblem,
  roleOf,
} from './members.rules';

/**
 * Members of an account (issue 26): owners invite by email, change roles and
 * remove members; owners and admins see the list. Every change re-reads the
 * acting member inside the transaction that makes it, with the account row
 * locked: a role taken away a moment ago, or a concurrent change by another
 * owner, is seen, and the account always keeps an owner.
 *
 * Invitations: the token is 32 random bytes, only its SHA-256 is stored; the
 * email is queued in notification_outbox (one message per invitation) and
 * sent after the commit, so a slow mail server never holds the account lock.
 */
type Actor = Pick<CustomerSession, 'accountId' | 'userId' | 'role'>;

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const BCRYPT_ROUNDS = 12;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Invitation token attempts per client address and window (GET and POST), across instances. */
const TOKEN_ATTEMPTS = 20;
const TOKEN_WINDOW_S = 900;
/** Invitation emails left queued by a failed send, retried with the next invitation (older than this, at most this many). */
const RETRY_AFTER_MS = 60_000;
const RETRY_BATCH = 10;

const notFoundMember = () => new NotFoundError('That member was not found in this account.');
const badLink = () => new NotFoundError('This invitation link is not valid.');
const spentLink = () => new GoneError("This invitation has expired, was withdrawn or was already used. Ask the account's owner for a new one.");

export interface MembersDeps {
  db: Db;
  clock: Clock;
  /** Where the console is reached from outside (the link in the email). */
  publicBaseUrl: string;
  mail?: Config['mail'];
  mailer?: Mailer;
  /** A failed send after the commit: the message stays queued. */
  onSendError?: (err: unknown) => void;
}

export function membersService(deps: MembersDeps) {
  const { db, clock } = deps;
  const mailer = deps.mailer ?? (deps.mail ? createMailer(deps.mail) : undefined);
  const attempts = signInAttemptsRepo(db);

  const mustManage = (s: Actor) => {
    if (!mayUse(s.role, 'members_manage')) throw new ForbiddenError("Only the account's owners can invite, remove or change members.");
  };

  /** Locks the account and checks, as of now, that the actor is still one of its owners. */
  async function ownerInTransaction(trx: Trx, s: Actor) {
    const account = await data.lockAccount(trx, s.accountId);
    if (!account) throw new NotFoundError('The account no longer exists.');
    const me = await data.findMember(trx, s.accountId, s.userId);
    if (!me || !mayUse(me.console_role, 'members_manage')) throw new ForbiddenError("Only the account's owners can invite, remove or change members.");
    return { account, me };
  }

  /** Sends queued invitation emails: each claimed, sent and marked in its own transaction; stops at the first failure. */
  async function sendQueued(opts: { keys?: readonly string[]; queuedBefore?: Date; max: number }): Promise<number> {
    if (!mailer) return 0;
    let sent = 0;
    while (sent < opts.max) {
      const went = await db.transaction(async (trx) => {
        const m = await data.claimInvitationEmail(trx, opts);
        if (!m) return false;
        await mailer.send(m);
        await data.markInvitationEmailSent(trx, m.id);
        return true;
      });
      if (!went) break;
      sent++;
    }
    return sent;
  }

  return {
    /** The page: members with role, last sign-in and two-step status, and unanswered invitations. Owners and admins. */
    async list(s: Actor) {
      if (!mayUse(s.role, 'members')) throw new ForbiddenError('Your role in this account does not give access to members.');
      const now = clock.now();
      const rows = await data.listMembers(db, s.accountId, MAX_MEMBERS_LISTED + 1);
      const invitations = await data.unansweredInvitations(db, s.accountId, MAX_MEMBERS_LISTED);
      return {
        canManage: mayUse(s.role, 'members_manage'),
        more: rows.length > MAX_MEMBERS_LISTED,
        members: rows.slice(0, MAX_MEMBERS_LISTED).map((m) => ({
          id: m.id,
          name: m.name,
          email: m.email,
          role: m.console_role,
          you: m.id === s.userId,
          hasPassword: m.has_password,
          lastSignIn: m.last_sign_in ? new Date(m.last_sign_in).toISOString() : null,
          twoStep: m.two_step,
        })),
        invitations: invitations.map((i) => ({
          id: i.id,
          email: i.email,
          role: i.console_role,
          sentAt: new Date(i.created_at).toISOString(),
          expiresAt: new Date(i.expires_at).toISOString(),
          state: invitationState({ ...i, expires_at: new Date(i.expires_at) }, now),
        })),
      };
    },

    /** Invites an address with a role: the invitation row and its email, then the email is sent. */
    async invite(s: Actor & Pick<CustomerSession, 'name'>, input: { email: unknown; role: unknown }): Promise<{ id: string; email: string }> {
      mustManage(s);
      const email = typeof input.email === 'string' ? input.email.trim() : '';
      const problem = inviteEmailProblem(email);
      if (problem) throw new ValidationError(problem, [{ field: 'email', message: problem }]);
      const role = roleOf(input.role);
      if (!role) throw new ValidationError('choose a role: owner, admin, developer or billing', [{ field: 'role', message: 'unknown role' }]);
      const now = clock.now();
      const token = randomBytes(32).toString('base64url');
      const created = await db.transaction(async (trx) => {
        const { account, me } = await ownerInTransaction(trx, s);
        const existing = await data.userByEmail(trx, s.accountId, email);
        if (existing && !existing.console_removed_at && !existing.erased_at) throw new ConflictError(`${email} is already a member of this account.`);
        await data.revokeExpiredInvitation(trx, s.accountId, email, now);
        if (await data.openInvitationFor(trx, s.accountId, email)) {
          throw new ConflictError(`${email} already has an open invitation. Revoke it below to send a new one.`);
        }
        if (!invitationFits(await data.countOpenInvitations(trx, s.accountId, now))) {
          throw new ConflictError(`This account already has ${MAX_OPEN_INVITATIONS} open invitations: revoke some, or wait until they are accepted or expire.`);
        }
        const expiresAt = invitationExpiry(now);
        const inv = await data.insertInvitation(trx, { account_id: s.accountId, email, console_role: role, token_hash: sha(token), invited_by: s.userId, expires_at: expiresAt });
        const link = `${deps.publicBaseUrl}/app/invitations/accept?token=${token}`;
        const m = invitationEmail({ accountName: account.name, inviterName: me.name, role, link, expiresAt });
        await data.enqueueInvitationEmail(trx, { key: invitationEmailKey(inv.id), recipient: email, ...m });
        return inv;
      });
      try {
        await sendQueued({ keys: [invitationEmailKey(created.id)], max: 1 });
        await sendQueued({ queuedBefore: new Date(now.getTime() - RETRY_AFTER_MS), max: RETRY_BATCH });
      } catch (err) {
        deps.onSendError?.(err);
      }
      return { id: created.id, email };
    },

    /** Revokes an unanswered invitation of the account: its link stops working. */
    async revokeInvitation(s: Actor, invitationId: string): Promise<void> {
      mustManage(s);
      if (!UUID.test(invitationId)) throw new NotFoundError('That invitation was not found.');
      await db.transaction(async (trx) => {
        await ownerInTransaction(trx, s);
        if (!(await data.revokeInvitation(trx, s.accountId, invitationId))) throw new NotFoundError('That invitation was not found, or was already accepted or revoked.');
      });
    },

    /** Gives a member another role; their open sessions have it from their next request. */
    async changeRole(s: Actor, userId: string, rawRole: unknown): Promise<{ role: ConsoleRole }> {
      mustManage(s);
      const role = roleOf(rawRole);
      if (!role) throw new ValidationError('choose a role: owner, admin, developer or billing', [{ field: 'role', message: 'unknown role' }]);
      if (!UUID.test(userId)) throw notFoundMember();
      return db.transaction(async (trx) => {
        await ownerInTransaction(trx, s);
        const target = await data.findMember(trx, s.accountId, userId);
        if (!target) throw notFoundMember();
        const problem = roleChangeProblem({ role: target.console_role }, role, await data.countOwners(trx, s.accountId));
        if (problem) throw new ConflictError(problem);
        await data.setMemberRole(trx, userId, role);
        return { role };
      });
    },

    /** Removes a member (yourself too, if another owner remains): access ends at once, in one transaction. */
    async remove(s: Actor, userId: string): Promise<void> {
      mustManage(s);
      if (!UUID.test(userId)) throw notFoundMember();
      await db.transaction(async (trx) => {
        await ownerInTransaction(trx, s);
        const target = await data.findMember(trx, s.accountId, userId);
        if (!target) throw notFoundMember();
        const problem = removalProblem({ role: target.console_role }, await data.countOwners(trx, s.accountId));
        if (problem) throw new ConflictError(problem);
        await data.removeMember(trx, userId);
      });
    },

    /**
     * Counts one invitation-token attempt for the client address (the sign-in
     * throttle's table): guessing tokens from one address is bounded.
     */
    async takeTokenAttempt(ip: string | null): Promise<{ allowed: true } | { allowed: false; retryAfterSeconds: number }> {
      const row = await attempts.take(`invitation:${sha(ip ?? 'unknown')}`, TOKEN_WINDOW_S);
      return row.attempts <= TOKEN_ATTEMPTS ? { allowed: true } : { allowed: false, retryAfterSeconds: Math.max(1, row.retry_after) };
    },

    /** What an invitation link offers: the account's name, the role and the address. Unknown: 404; used, revoked or expired: 410. */
    async invitation(token: string): Promise<{ accountName: string; role: ConsoleRole; email: string }> {
      if (!invitationTokenShapeOk(token)) throw badLink();
      const inv = await data.invitationByTokenHash(db, sha(token));
      if (!inv) throw badLink();
      if (invitationState({ ...inv, expires_at: new Date(inv.expires_at) }, clock.now()) !== 'open' || inv.account_status === 'closed') throw spentLink();
      return { accountName: inv.account_name, role: inv.console_role, email: inv.email };
    },

    /**
     * Accepts an invitation: creates the account's user with the invited
     * address and role (or lets a removed one in again), with this name and
     * password, and spends the invitation. Signing in is then as for anyone.
     */
    async accept(token: string, input: { name: unknown; password: unknown }): Promise<{ userId: string; accountName: string }> {
      if (!invitationTokenShapeOk(token)) throw badLink();
      const name = typeof input.name === 'string' ? input.name.trim() : '';
      const password = typeof input.password === 'string' ? input.password : '';
      const problem = memberNameProblem(name) ?? passwordProblem(password);
      if (problem) throw new ValidationError(problem);
      // Hashed before the row lock: bcrypt takes a quarter of a second.
      const hash = await bcrypt.hash(password, BCRYPT_ROUNDS);
      return db.transaction(async (trx) => {
        const inv = await data.invitationByTokenHash(trx, sha(token), true);
        if (!inv) throw badLink();
        if (invitationState({ ...inv, expires_at: new Date(inv.expires_at) }, clock.now()) !== 'open' || inv.account_status === 'closed') throw spentLink();
        const existing = await data.userByEmail(trx, inv.account_id, inv.email);
        let userId: string;
        if (existing && !existing.console_removed_at) {
          throw new ConflictError('This address is already a member of the account: sign in instead.');
        } else if (existing) {
          await data.readmitMember(trx, existing.id, { name, console_role: inv.console_role, password_hash: hash });
          userId = existing.id;
        } else {
          userId = await data.insertMember(trx, { account_id: inv.account_id, name, email: inv.email, console_role: inv.console_role, password_hash: hash });
        }
        await data.markInvitationAccepted(trx, inv.id, userId);
        return { userId, accountName: inv.account_name };
      });
    },

    /** Sends invitation emails a failed send left queued (at most `max`). */
    sendQueued: (max = RETRY_BATCH) => sendQueued({ max }),
  };
}

export type MembersService = ReturnType<typeof membersService>;
