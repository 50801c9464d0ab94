import { z } from 'zod';
import type { Config } from '../config';
import type { Db } from '../db/knex';
import { NotFoundError } from '../errors';
import { createMailer, type Mailer } from '../notify/mailer';
import { decimalPlaces, isDecimalString, Money } from '../shared/money.rules';
import { validate } from '../shared/validate';
import { accountEventsPage, accountExists, alertSettings, markEventEmailSent, pendingEventEmails, upsertAlertSettings, type AccountEventRow } from './events.data';
import { ACCOUNT_EVENT_TYPES, MAX_LOW_BALANCE_THRESHOLDS, normalizeThresholds } from './events.rules';

/**
 * Account events (issue 22; docs/notifications.md): the alert settings staff
 * and management keys set, the events an account can list, and the sending
 * of queued event emails. The events themselves are recorded where the money
 * moves (events.data.ts, called from settlement, top-ups and invoicing).
 */

/** A threshold: a positive decimal string with at most 12 decimals, below 10^9 (as staff amounts). */
const threshold = z
  .string({ error: 'a threshold must be a decimal string such as "10.00"' })
  .trim()
  .max(32, 'a threshold is too long')
  .refine(isDecimalString, 'a threshold must be a decimal string such as "10.00"')
  .refine((v) => decimalPlaces(v) <= 12, 'a threshold may have at most 12 decimal places')
  .refine((v) => !isDecimalString(v) || (new Money(v).gt(0) && new Money(v).lte('1000000000')), 'a threshold must be more than 0 and at most 1000000000');

/** What staff (admin API, CLI) and management keys may set; at least one field. */
export const alertSettingsInput = z
  .strictObject({
    lowBalanceThresholds: z.array(threshold).max(MAX_LOW_BALANCE_THRESHOLDS, `at most ${MAX_LOW_BALANCE_THRESHOLDS} low-balance thresholds`).optional(),
    emailAlerts: z.boolean({ error: 'emailAlerts must be true or false' }).optional(),
  })
  .refine((v) => v.lowBalanceThresholds !== undefined || v.emailAlerts !== undefined, 'give lowBalanceThresholds, emailAlerts or both');

export const listEventsInput = z.strictObject({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  /** The previous page's nextPage.before. */
  before: z
    .string()
    .max(80)
    .regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, 'before must be the nextPage.before of the previous page')
    .optional(),
  type: z.enum(ACCOUNT_EVENT_TYPES).optional(),
});

const accountId = z.uuid({ error: 'accountId must be an id (UUID)' });

export const eventView = (e: AccountEventRow) => ({
  id: e.id,
  type: e.type,
  occurredAt: new Date(e.occurred_at).toISOString(),
  data: e.data,
});

const settingsView = (s: Awaited<ReturnType<typeof alertSettings>>) => ({
  accountId: s.account_id,
  lowBalanceThresholds: s.low_balance_thresholds.map((t) => new Money(t).toFixed()),
  emailAlerts: s.email_alerts,
  updatedAt: s.updated_at ? new Date(s.updated_at).toISOString() : null,
});

/** Queued event emails sent per call of sendQueuedEmails, at most. */
export const EVENT_EMAIL_BATCH = 100;

export function accountEventsService(deps: { db: Db; mail?: Config['mail']; mailer?: Mailer }) {
  const { db } = deps;
  const requireAccount = async (id: string) => {
    if (!(await accountExists(db, id))) throw new NotFoundError(`account ${id} does not exist`);
  };

  return {
    /** The account's low-balance thresholds and whether alerts are emailed (defaults when never set). */
    async getAlertSettings(raw: { accountId: unknown }) {
      const id = validate(accountId, raw.accountId);
      await requireAccount(id);
      return settingsView(await alertSettings(db, id));
    },

    /**
     * Sets the account's alert settings (the fields given; thresholds replace
     * the list). For staff (admin API, CLI) and the client API's management
     * keys: the caller has checked that the actor may act for `accountId`.
     */
    async setAlertSettings(raw: { accountId: unknown; settings: unknown }) {
      const id = validate(accountId, raw.accountId);
      const input = validate(alertSettingsInput, raw.settings);
      await requireAccount(id);
      await upsertAlertSettings(db, id, {
        ...(input.lowBalanceThresholds ? { lowBalanceThresholds: normalizeThresholds(input.lowBalanceThresholds) } : {}),
        ...(input.emailAlerts !== undefined ? { emailAlerts: input.emailAlerts } : {}),
      });
      return settingsView(await alertSettings(db, id));
    },

    /** The account's events, newest first (ids, amounts and links only). */
    async listEvents(raw: { accountId: unknown; query?: unknown }) {
      const id = validate(accountId, raw.accountId);
      const q = validate(listEventsInput, raw.query ?? {});
      await requireAccount(id);
      const [at, beforeId] = q.before ? q.before.split('_') : [];
      const before = at && beforeId ? { at, id: beforeId } : undefined;
      const rows = await accountEventsPage(db, id, { limit: q.limit, ...(before ? { before } : {}), ...(q.type ? { types: [q.type] } : {}) });
      const last = rows.at(-1);
      return {
        items: rows.map(eventView),
        nextPage: rows.length === q.limit && last ? { before: `${last.cursor_at}_${last.id}` } : null,
      };
    },

    /**
     * Sends up to EVENT_EMAIL_BATCH queued event emails, each marked sent
     * (its body cleared) right after it went; returns how many went. For
     * whatever delivers account events (the webhook dispatcher's loop):
     * sending is outside the money's transaction, so a slow mail server never
     * holds up settlement.
     */
    async sendQueuedEmails(): Promise<number> {
      const mailer = deps.mailer ?? (deps.mail ? createMailer(deps.mail) : undefined);
      if (!mailer) throw new Error('sendQueuedEmails needs the mail settings');
      const pending = await pendingEventEmails(db, EVENT_EMAIL_BATCH);
      for (const m of pending) {
        await mailer.send(m);
        await markEventEmailSent(db, m.id);
      }
      return pending.length;
    },
  };
}

export type AccountEventsService = ReturnType<typeof accountEventsService>;
