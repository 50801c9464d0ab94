import { createHash, randomBytes } from 'node:crypto';
import { systemClock, type Clock } from '../clock';
import type { Config } from '../config';
import type { Db } from '../db/knex';
import { createMailer, type Mailer } from '../notify/mailer';
import { signInAttemptsRepo } from '../staff/staff.data';
import { MAX_EMAIL } from './customerConsole.rules';
import { claimLinkEmail, dropUnsentLink, enqueueLinkEmail, insertLoginLink, linkRecipients, loginLinkForUpdate, markLinkEmailSent, markLoginLinkUsed } from './loginLink.data';
import { linkExpiry, linkUsable, LOGIN_LINK_WINDOW_S, LOGIN_LINKS_PER_EMAIL, LOGIN_TOKEN_PATTERN, loginLinkMail, loginLinkMailKey, MAX_LINK_USERS } from './secondFactor.rules';

/**
 * One-time sign-in links by email (issue 26). Asking always gets the same
 * answer, whether the address has users or not, and is throttled per address
 * (console_sign_in_attempts, as sign-in). Each user of the address (at most
 * MAX_LINK_USERS) gets its own link: 32 random bytes, of which only the
 * SHA-256 is stored, valid 15 minutes, spent on first use. The email is
 * queued in notification_outbox (keyed by the token's hash) and sent after
 * the commit, off the request, so the answer's timing does not tell whether
 * a message went; once sent, its body (the link) is cleared.
 */
export interface LoginLinkDeps {
  db: Db;
  clock?: Clock;
  mail: Config['mail'];
  mailer?: Mailer;
  /** Where the console is reached from outside (PUBLIC_BASE_URL): the link's origin. */
  publicBaseUrl: string;
  onSendError?: (err: unknown) => void;
}

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const identity = (email: string) => `customer-link:${sha(email.trim().toLowerCase())}`;

export function loginLinkService({ db, clock = systemClock, mail, mailer, publicBaseUrl, onSendError }: LoginLinkDeps) {
  const attempts = signInAttemptsRepo(db);
  let transport = mailer;
  const send = () => (transport ??= createMailer(mail));

  /** Sends the queued emails of these links; one that fails is dropped with its link (the person can ask again). */
  async function deliver(links: { key: string; tokenHash: string }[]): Promise<void> {
    for (const l of links) {
      try {
        await db.transaction(async (trx) => {
          const m = await claimLinkEmail(trx, [l.key]);
          if (!m) return;
          await send().send(m);
          await markLinkEmailSent(trx, m.id);
        });
      } catch (err) {
        await dropUnsentLink(db, l.key, l.tokenHash).catch(() => undefined);
        onSendError?.(err);
      }
    }
  }

  return {
    /**
     * Queues a link for each user of the address, unless the address asked
     * too often; resolves once queued (sending goes on in the background).
     * Says nothing about what it found: the caller answers the same either way.
     */
    async request(rawEmail: string): Promise<{ sending: Promise<void> }> {
      const email = rawEmail.trim();
      if (!email || email.length > MAX_EMAIL || !/^[^@\s]+@[^@\s]+$/.test(email)) return { sending: Promise.resolve() };
      const t = await attempts.take(identity(email), LOGIN_LINK_WINDOW_S);
      if (t.attempts > LOGIN_LINKS_PER_EMAIL) return { sending: Promise.resolve() };
      const users = await linkRecipients(db, email, MAX_LINK_USERS);
      const now = clock.now();
      const queued: { key: string; tokenHash: string }[] = [];
      await db.transaction(async (trx) => {
        for (const u of users) {
          const token = randomBytes(32).toString('base64url');
          const tokenHash = sha(token);
          const expiresAt = linkExpiry(now);
          await insertLoginLink(trx, { token_hash: tokenHash, user_id: u.id, expires_at: expiresAt });
          const m = loginLinkMail({ url: `${publicBaseUrl}/app/login/link?token=${token}`, accountName: u.account_name, expiresAt });
          const key = loginLinkMailKey(tokenHash);
          await enqueueLinkEmail(trx, { key, recipient: u.email, subject: m.subject, body: m.body });
          queued.push({ key, tokenHash });
        }
      });
      return { sending: queued.length ? deliver(queued) : Promise.resolve() };
    },

    /** Whether a token has the shape of one we issue (the confirm page shows nothing else about it). */
    wellFormed: (token: unknown): token is string => typeof token === 'string' && LOGIN_TOKEN_PATTERN.test(token),

    /** Spends the link: its user and account if it was usable (unused, unexpired, user with console access), else null. */
    async redeem(token: unknown): Promise<{ userId: string; accountId: string } | null> {
      if (typeof token !== 'string' || !LOGIN_TOKEN_PATTERN.test(token)) return null;
      const tokenHash = sha(token);
      const now = clock.now();
      return db.transaction(async (trx) => {
        const l = await loginLinkForUpdate(trx, tokenHash);
        if (!l) return null;
        const usable = linkUsable(
          { expiresAt: new Date(l.expires_at), usedAt: l.used_at, userErased: l.erased_at !== null, consoleRemoved: l.console_removed_at !== null, accountClosed: l.account_status === 'closed' },
          now,
        );
        if (!usable || !(await markLoginLinkUsed(trx, tokenHash))) return null;
        return { userId: l.user_id, accountId: l.account_id };
      });
    },
  };
}

export type LoginLinkService = ReturnType<typeof loginLinkService>;
