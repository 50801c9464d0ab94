import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { Clock } from '../clock';
import type { Config } from '../config';
import type { Db } from '../db/knex';
import { ConflictError, NotFoundError } from '../errors';
import { createMailer, type Mailer } from '../notify/mailer';
import { pageLimit } from '../staff/schemas';
import { validate } from '../shared/validate';
import { deadlines, JURISDICTIONS } from './deadlines.rules';
import { enqueueNotification } from './privacy.data';
import * as data from './processorMode.data';
import { answerText, EMAIL_RETRY_AFTER_MS, forwardText, hasControl, isOverdue, MAX_CONTACT_EMAIL, MAX_CUSTOMER_NAME, MAX_REASON, normalisedName, outcomeOf, type NamedCustomer } from './processorMode.rules';
import { DSR_TYPES } from './rights.rules';

/**
 * Processor-mode requests (docs/privacy-requests.md): intake from the public
 * form and from compliance staff, the stored and emailed answer, and the one
 * forward to the named customer's privacy contact with its own deadline. The
 * only address a forward goes to is the account's stored contact, set by
 * billing or admin staff; nothing the person gives chooses a recipient other
 * than their own address for their own answer.
 */

/** Why: 3-500 characters of one line of text (no control characters, so it prints safely in a terminal). */
const reasonField = z
  .string({ error: 'reason must say why' })
  .trim()
  .min(3, 'reason: say why (at least 3 characters)')
  .max(MAX_REASON, `reason: at most ${MAX_REASON} characters`)
  .refine((v) => !hasControl(v), 'reason must be one line of text without control characters');

export const setPrivacyContactBody = z.strictObject({
  email: z.email('email must be an email address').max(MAX_CONTACT_EMAIL),
  reason: reasonField,
});

/** POST /privacy/processor-dsr/:id/close: the customer answered or staff handled it. */
export const closeForwardBody = z.strictObject({ reason: reasonField });

export const processorRequestInput = z
  .strictObject({
    type: z.enum(DSR_TYPES, { error: `type must be one of ${DSR_TYPES.join(', ')}` }),
    email: z.email('email must be an email address').max(MAX_CONTACT_EMAIL),
    jurisdiction: z.enum(JURISDICTIONS as ['gdpr', 'uk_gdpr', 'ccpa', 'unknown']).default('unknown'),
    customerAccountId: z.uuid({ error: 'customerAccountId must be an account id (UUID)' }).optional(),
    customerName: z.string().max(MAX_CUSTOMER_NAME, `customerName: at most ${MAX_CUSTOMER_NAME} characters`).optional(),
  })
  .refine((v) => !(v.customerAccountId && normalisedName(v.customerName)), { message: 'name the customer by customerAccountId or customerName, not both', path: ['customerName'] });

export const listProcessorRequestsInput = z.strictObject({
  outcome: z.enum(['forwarded', 'customer_not_found', 'no_contact', 'not_named']).optional(),
  overdue: z.enum(['true', 'false'], { error: 'overdue must be true or false' }).optional(),
  limit: pageLimit(),
});

const isUuid = (id: string) => z.uuid().safeParse(id).success;

/** Sends queued processor-mode emails per call of sendQueued, at most. */
const EMAIL_BATCH = 50;

/**
 * Sends queued processor-mode emails (outbox keys `processor:%` only; never
 * another message of the outbox). Each message is claimed in its own
 * transaction (row lock, SKIP LOCKED), sent, and marked sent with its body
 * cleared before the commit: two senders never send the same message, and a
 * failed send leaves it queued for the next call. Without `keys`, only
 * messages queued more than EMAIL_RETRY_AFTER_MS ago (the filing's own send
 * goes first). Stops at the first failure and throws it.
 */
export function processorEmailSender(deps: { db: Db; clock: Clock; mailer?: Mailer; mail?: Config['mail'] }) {
  const mailer = deps.mailer ?? (deps.mail ? createMailer(deps.mail) : undefined);
  return {
    async sendQueued(opts: { keys?: readonly string[] } = {}): Promise<number> {
      if (!mailer) throw new Error('sending processor-mode emails needs the mail settings');
      const queuedBefore = opts.keys ? undefined : new Date(deps.clock.now().getTime() - EMAIL_RETRY_AFTER_MS);
      let sent = 0;
      while (sent < EMAIL_BATCH) {
        const went = await deps.db.transaction(async (trx) => {
          const m = await data.claimPendingEmail(trx, { ...(opts.keys ? { keys: opts.keys } : {}), ...(queuedBefore ? { queuedBefore } : {}) });
          if (!m) return false;
          await mailer.send(m);
          await data.markEmailSent(trx, m.id);
          return true;
        });
        if (!went) break;
        sent++;
      }
      return sent;
    },
  };
}
export type ProcessorEmailSender = ReturnType<typeof processorEmailSender>;

function requestView(r: any, now: Date) {
  const dueAt = r.due_at ? new Date(r.due_at) : null;
  const closedAt = r.closed_at ? new Date(r.closed_at) : null;
  return {
    id: r.id as string,
    reference: r.reference as string,
    type: r.type as string,
    channel: r.channel as string,
    outcome: r.outcome as string,
    namedAccountId: r.named_account_id as string | null,
    namedCustomer: r.named_customer as string | null,
    accountId: r.account_id as string | null,
    receivedAt: new Date(r.received_at).toISOString(),
    forwardedTo: (r.forwarded_to ?? null) as string | null,
    forwardedAt: r.forwarded_at ? new Date(r.forwarded_at).toISOString() : null,
    dueAt: dueAt?.toISOString() ?? null,
    closedAt: closedAt?.toISOString() ?? null,
    closedBy: (r.closed_by ?? null) as string | null,
    closeReason: (r.close_reason ?? null) as string | null,
    overdue: isOverdue({ dueAt, closedAt }, now),
    needsStaff: r.outcome === 'customer_not_found' || r.outcome === 'no_contact',
  };
}

/** What the public form answers, whatever was found: the answer itself goes to the address given. */
export const PUBLIC_PROCESSOR_ANSWER = Object.freeze({
  status: 'received',
  next: 'We emailed our answer to the address you gave, with the reference of your request.',
});

const reference = () => `P-${randomBytes(6).toString('hex').toUpperCase()}`;

export function processorModeService(deps: { db: Db; clock: Clock; config: Pick<Config, 'dsr' | 'mail'>; mailer?: Mailer; onSendError?: (err: unknown) => void }) {
  const { db, clock, config } = deps;
  const mailer = deps.mailer ?? createMailer(config.mail);
  /** Sending is after the commit: a slow or failing mail server never undoes a filing; what failed stays queued for the retry path. */
  const sender = processorEmailSender({ db, clock, mailer });
  const sendSoon = async (r: { id?: string }) => {
    if (!r.id) return;
    try {
      await sender.sendQueued({ keys: [`processor:${r.id}:answer`, `processor:${r.id}:forward`] });
    } catch (err) {
      deps.onSendError?.(err);
    }
  };

  async function file(raw: unknown, actor: string, channel: 'staff' | 'subject') {
    const input = validate(processorRequestInput, raw);
    const name = normalisedName(input.customerName);
    const now = clock.now();
    const d = deadlines(input.jurisdiction, now.toISOString(), config.dsr.deadlineOverrideS ? { overrideSeconds: config.dsr.deadlineOverrideS } : {});
    return db.transaction(async (trx) => {
      const named: NamedCustomer = { named: !!(input.customerAccountId || name), account: await data.findNamedAccount(trx, { id: input.customerAccountId, name }) };
      const outcome = outcomeOf(named);
      if (outcome === 'forwarded') {
        await data.lockAccount(trx, named.account!.id);
        // One live forward per person, customer and type: filing again must not flood the customer's contact.
        if (await data.openForwardFor(trx, named.account!.id, input.email, input.type, now)) return { duplicate: true as const };
      }
      const ref = reference();
      const answer = answerText(outcome, ref, named.account?.name ?? null);
      const row = await data.insertRequest(trx, {
        reference: ref,
        type: input.type,
        channel,
        subject_email: input.email,
        jurisdiction: input.jurisdiction,
        named_account_id: input.customerAccountId ?? null,
        named_customer: name ?? null,
        account_id: named.account?.id ?? null,
        outcome,
        answer,
        created_by: actor,
        received_at: now,
      });
      await enqueueNotification(trx, { key: `processor:${row.id}:answer`, recipient: input.email, subject: `Your privacy request ${ref}`, body: answer });
      let forward: { forwardedTo: string; dueAt: string } | null = null;
      if (outcome === 'forwarded') {
        const to = named.account!.contact!;
        await data.insertForward(trx, { request_id: row.id, account_id: named.account!.id, forwarded_to: to, forwarded_at: now, due_at: new Date(d.dueAt) });
        const m = forwardText(ref, input.type, input.email, d.dueAt);
        await enqueueNotification(trx, { key: `processor:${row.id}:forward`, recipient: to, subject: m.subject, body: m.body });
        forward = { forwardedTo: to, dueAt: d.dueAt };
      }
      return { duplicate: false as const, id: row.id, reference: ref, outcome, accountId: named.account?.id ?? null, answer, forward };
    });
  }

  async function getRequest(id: string) {
    const r = isUuid(id) ? await data.requestById(db, id) : undefined;
    if (!r) throw new NotFoundError(`processor request ${isUuid(id) ? id : '(not a request id)'} does not exist`);
    return { ...requestView(r, clock.now()), subjectEmail: r.subject_email as string, jurisdiction: r.jurisdiction as string, createdBy: r.created_by as string, answer: r.answer as string };
  }

  return {
    /** Compliance staff take a request from someone who is not a user (by phone, letter, email). */
    create: async (raw: unknown, actor: string) => {
      const r = await file(raw, actor, 'staff');
      await sendSoon(r);
      return r;
    },
    /** The public form: the same answer whatever was found; the email carries the rest. */
    submit: async (raw: unknown) => {
      await sendSoon(await file(raw, 'subject', 'subject'));
      return { ...PUBLIC_PROCESSOR_ANSWER };
    },
    /** The retry path: every processor-mode email a failed send left queued (see processorEmailSender). */
    sendQueued: () => sender.sendQueued(),
    /** The staff queue, newest first: outcome, forward, its deadline and whether it was closed; `overdue=true`: open forwards past their deadline, oldest deadline first. */
    async list(raw: unknown) {
      const input = validate(listProcessorRequestsInput, raw);
      const now = clock.now();
      const rows = await data.listRequests(db, { limit: input.limit, ...(input.outcome ? { outcome: input.outcome } : {}), ...(input.overdue === 'true' ? { overdueAt: now } : {}) });
      const views = rows.map((r: any) => requestView(r, now));
      return input.overdue === 'false' ? views.filter((v) => !v.overdue) : views;
    },
    /** One request with its answer and its forward (who closed it, when and why). */
    get: getRequest,
    /** Compliance staff close a request's forward (the customer answered, or staff handled it): who, when and why are kept; closing twice is a conflict. */
    async closeForward(id: string, raw: unknown, actor: string) {
      const b = validate(closeForwardBody, raw);
      if (!isUuid(id)) throw new NotFoundError('processor request (not a request id) does not exist');
      const closedAt = clock.now();
      await db.transaction(async (trx) => {
        const f = await data.forwardForUpdate(trx, id);
        if (!f) {
          if (await data.requestById(trx, id)) throw new ConflictError(`processor request ${id} was not forwarded: there is nothing to close`);
          throw new NotFoundError(`processor request ${id} does not exist`);
        }
        if (f.closed_at) throw new ConflictError(`the forward of processor request ${id} was closed already (${new Date(f.closed_at).toISOString()} by ${f.closed_by})`);
        await data.closeForward(trx, id, { closed_at: closedAt, closed_by: actor, close_reason: b.reason });
      });
      return getRequest(id);
    },
    /** Billing or admin staff set the customer's privacy contact; who, why, before, after and when go to its history. */
    async setContact(accountId: string, raw: unknown, actor: string) {
      const b = validate(setPrivacyContactBody, raw);
      if (!z.uuid().safeParse(accountId).success || !(await data.accountExists(db, accountId))) throw new NotFoundError(`account ${accountId} does not exist`);
      const setAt = clock.now();
      await db.transaction((trx) => data.upsertContact(trx, { account_id: accountId, email: b.email, set_by: actor, reason: b.reason, set_at: setAt }));
      return { accountId, email: b.email, setBy: actor, reason: b.reason, setAt: setAt.toISOString() };
    },
    /** The contact (null: none) and its last 50 changes, newest first. */
    async getContact(accountId: string) {
      if (!isUuid(accountId)) throw new NotFoundError(`account ${accountId} does not exist`);
      const c = await data.contactOf(db, accountId);
      if (!c) return null;
      const changes = (await data.contactChanges(db, accountId, 50)).map((h: any) => ({
        changedAt: new Date(h.changed_at).toISOString(),
        changedBy: h.changed_by as string,
        reason: h.reason as string,
        emailBefore: (h.email_before ?? null) as string | null,
        emailAfter: h.email_after as string,
      }));
      return { accountId, email: c.email, setBy: c.set_by, reason: c.reason, setAt: new Date(c.set_at).toISOString(), changes };
    },
  };
}

export type ProcessorModeService = ReturnType<typeof processorModeService>;
