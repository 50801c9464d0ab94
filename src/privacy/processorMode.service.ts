import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { Clock } from '../clock';
import type { Config } from '../config';
import type { Db } from '../db/knex';
import { NotFoundError } from '../errors';
import { createMailer, type Mailer } from '../notify/mailer';
import { pageLimit } from '../staff/schemas';
import { validate } from '../shared/validate';
import { deadlines, JURISDICTIONS } from './deadlines.rules';
import { enqueueNotification } from './privacy.data';
import * as data from './processorMode.data';
import { answerText, forwardText, MAX_CONTACT_EMAIL, MAX_CUSTOMER_NAME, normalisedName, outcomeOf, type NamedCustomer } from './processorMode.rules';
import { DSR_TYPES } from './rights.rules';

/**
 * Processor-mode requests (docs/privacy-requests.md): intake from the public
 * form and from compliance staff, the stored and emailed answer, and the one
 * forward to the named customer's privacy contact with its own deadline. The
 * only address a forward goes to is the account's stored contact, set by
 * billing or admin staff; nothing the person gives chooses a recipient other
 * than their own address for their own answer.
 */

export const setPrivacyContactBody = z.strictObject({
  email: z.email('email must be an email address').max(MAX_CONTACT_EMAIL),
  reason: z.string().trim().min(3, 'reason: say why (at least 3 characters)').max(500),
});

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
  limit: pageLimit(),
});

/** What the public form answers, whatever was found: the answer itself goes to the address given. */
export const PUBLIC_PROCESSOR_ANSWER = Object.freeze({
  status: 'received',
  next: 'We emailed our answer to the address you gave, with the reference of your request.',
});

const reference = () => `P-${randomBytes(6).toString('hex').toUpperCase()}`;

export function processorModeService(deps: { db: Db; clock: Clock; config: Pick<Config, 'dsr' | 'mail'>; mailer?: Mailer; onSendError?: (err: unknown) => void }) {
  const { db, clock, config } = deps;
  const mailer = deps.mailer ?? createMailer(config.mail);

  /**
   * Sends the queued processor-mode emails (this filing's and any an earlier
   * failed send left), each marked sent right after it went. Sending is after
   * the commit: a slow or failing mail server never undoes a filing. A
   * filing sends its own messages (`keys`); sendQueued() without keys sends
   * every one left over by a failed send.
   */
  async function sendQueued(keys?: readonly string[]): Promise<number> {
    const pending = await data.pendingEmails(db, 50, keys);
    for (const m of pending) {
      await mailer.send(m);
      await data.markEmailSent(db, m.id);
    }
    return pending.length;
  }
  const sendSoon = async (r: { id?: string }) => {
    if (!r.id) return;
    try {
      await sendQueued([`processor:${r.id}:answer`, `processor:${r.id}:forward`]);
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
    sendQueued: () => sendQueued(),
    /** The staff queue, newest first: outcome, forward and its deadline. */
    async list(raw: unknown) {
      const input = validate(listProcessorRequestsInput, raw);
      const now = clock.now();
      return (await data.listRequests(db, input)).map((r: any) => ({
        id: r.id,
        reference: r.reference,
        type: r.type,
        channel: r.channel,
        outcome: r.outcome,
        namedAccountId: r.named_account_id,
        namedCustomer: r.named_customer,
        accountId: r.account_id,
        receivedAt: new Date(r.received_at).toISOString(),
        forwardedTo: r.forwarded_to ?? null,
        forwardedAt: r.forwarded_at ? new Date(r.forwarded_at).toISOString() : null,
        dueAt: r.due_at ? new Date(r.due_at).toISOString() : null,
        overdue: !!r.due_at && !r.closed_at && new Date(r.due_at) <= now,
        needsStaff: r.outcome === 'customer_not_found' || r.outcome === 'no_contact',
      }));
    },
    /** Billing or admin staff set the customer's privacy contact; who, why and when stay on the row. */
    async setContact(accountId: string, raw: unknown, actor: string) {
      const b = validate(setPrivacyContactBody, raw);
      if (!z.uuid().safeParse(accountId).success || !(await data.accountExists(db, accountId))) throw new NotFoundError(`account ${accountId} does not exist`);
      const setAt = clock.now();
      await db.transaction((trx) => data.upsertContact(trx, { account_id: accountId, email: b.email, set_by: actor, reason: b.reason, set_at: setAt }));
      return { accountId, email: b.email, setBy: actor, reason: b.reason, setAt: setAt.toISOString() };
    },
    async getContact(accountId: string) {
      if (!z.uuid().safeParse(accountId).success) throw new NotFoundError(`account ${accountId} does not exist`);
      const c = await data.contactOf(db, accountId);
      return c ? { accountId, email: c.email, setBy: c.set_by, reason: c.reason, setAt: new Date(c.set_at).toISOString() } : null;
    },
  };
}

export type ProcessorModeService = ReturnType<typeof processorModeService>;
