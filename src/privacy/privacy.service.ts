import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, type Client } from '@temporalio/client';
import { z } from 'zod';
import type { Clock } from '../clock';
import type { Config } from '../config';
import * as data from './privacy.data';
import { appendDsrEvent, emailHash, findSubject } from './privacy.data';
import { usageAnalytics } from './analytics.data';
import type { Db, Trx } from '../db/knex';
import { AppError, ConflictError, DependencyUnavailableError, GoneError, NotFoundError, ValidationError } from '../errors';
import { pageLimit } from '../staff/schemas';
import { validate } from '../shared/validate';
import { workflowIds } from '../temporal/conventions';
import {
  dsrApproveSignal,
  dsrExtendSignal,
  dsrRefuseSignal,
  dsrStatusQuery,
  dsrVerifiedSignal,
  dsrWithdrawSignal,
  type DsrInput,
  type DsrState,
} from '../../workflows/messages';
import { deadlines, JURISDICTIONS } from './deadlines.rules';
import { codeKey, codeMatches } from './codes';
import { correctionChanges } from './correction';
import { open, packageKey, signLink, verifyLink } from './packages';
import { providersReceived } from './accessAnswer.data';
import { recipientsReceived } from './accessAnswer.rules';
import {
  ANSWERED_STATUSES,
  correctableAccounts,
  CORRECTABLE_FIELDS,
  DSR_STATUSES,
  DSR_TYPES,
  FAILURE_WINDOW_MS,
  FINAL_STATUSES,
  MAX_CODE_ATTEMPTS,
  REFUSAL_GROUNDS,
  type Correction,
  type DsrStatus,
} from './rights.rules';

/**
 * Data-subject requests for compliance staff (CLI, admin API) and subjects
 * (the public /privacy routes). Each request is the workflow `dsr:{id}`;
 * this module validates, writes what staff said to PostgreSQL (notes,
 * explanations, reasons) and signals the workflow with codes and staff ids.
 */
const uuid = (what: string) => z.uuid({ error: `${what} must be an id (UUID)` });
const correction = correctionChanges;

/** The public intake's per-minute cap over all instances is reached. */
class IntakeBusyError extends AppError {
  override readonly status = 429;
  override readonly code = 'rate_limited';
}

export const createDsrInput = z
  .strictObject({
    type: z.enum(DSR_TYPES, { error: `type must be one of ${DSR_TYPES.join(', ')}` }),
    email: z.email('email must be an email address').max(320),
    accountId: uuid('accountId').optional(),
    jurisdiction: z.enum(JURISDICTIONS as ['gdpr', 'uk_gdpr', 'ccpa', 'unknown']).default('unknown'),
    changes: correction.optional(),
  })
  .refine((v) => v.type !== 'correction' || (v.changes && (Object.keys(v.changes.user ?? {}).length || Object.keys(v.changes.account ?? {}).length)), {
    message: `a correction needs changes: {"user": {...}, "account": {...}} with fields ${[...CORRECTABLE_FIELDS.user.map((f) => `user.${f}`), ...CORRECTABLE_FIELDS.account.map((f) => `account.${f}`)].join(', ')}`,
    path: ['changes'],
  })
  .refine((v) => v.type === 'correction' || v.changes === undefined, { message: 'changes only go with a correction', path: ['changes'] });

export const verifyInput = z.strictObject({ method: z.enum(['document', 'account_login', 'video_call', 'other']), note: z.string().trim().min(3, 'note: say how identity was checked').max(1_000) });
export const extendInput = z.strictObject({ reason: z.string().trim().min(10, 'reason: tell the subject why (at least 10 characters)').max(1_000) });
export const refuseInput = z.strictObject({
  ground: z.enum(REFUSAL_GROUNDS, { error: `ground must be one of ${REFUSAL_GROUNDS.join(', ')}` }),
  explanation: z.string().trim().min(10, 'explanation: tell the subject why (at least 10 characters)').max(2_000),
  items: z.array(z.string().trim().min(1).max(100)).max(50).optional(),
});
export const listDsrInput = z.strictObject({
  status: z.enum(['open', ...DSR_STATUSES]).optional(),
  overdue: z.enum(['true', 'false']).optional(),
  type: z.enum(DSR_TYPES).optional(),
  limit: pageLimit(),
  after: z.uuid({ error: 'after must be the last request id of the previous page' }).optional(),
});
export const codeInput = z.strictObject({ code: z.string().regex(/^\d{6}$/, 'code must be the 6 digits from the email') });

/** The one answer of the public form, for a new request, a duplicate and a held-back one alike: it names no request and no date. */
export const PUBLIC_INTAKE_ANSWER = Object.freeze({
  status: 'received',
  next: 'If we can act on this request, we sent a code to the email address. Follow the instructions in that email to confirm it is you.',
});

/** verification_method of a request filed in the customer console: the user's sign-in verified who they are. */
export const CONSOLE_SIGN_IN = 'console_sign_in';
/** The types a signed-in user files in the customer console ('payload' is answered on the page itself: nothing is kept). */
export const CONSOLE_DSR_TYPES = ['access', 'portability', 'correction', 'deletion', 'restriction', 'objection', 'consent_withdrawal'] as const;
export type ConsoleDsrType = (typeof CONSOLE_DSR_TYPES)[number];
const CONSOLE_LIST_LIMIT = 100;
const consoleActor = (userId: string) => `console:user:${userId}`;

export function privacyService(deps: { db: Db; clock: Clock; config: Pick<Config, 'dsr' | 'dataDir'>; client?: Client; taskQueue?: string }) {
  const { db, clock, config } = deps;
  const temporal = () => {
    if (!deps.client || !deps.taskQueue) throw new DependencyUnavailableError('data-subject requests need Temporal');
    return { client: deps.client, taskQueue: deps.taskQueue };
  };
  const handle = (id: string) => temporal().client.workflow.getHandle(workflowIds.dsr(id));

  async function load(id: string) {
    if (!z.uuid().safeParse(id).success) throw new NotFoundError(`data-subject request ${id} does not exist`);
    const r = await data.findRequest(db, id);
    if (!r) throw new NotFoundError(`data-subject request ${id} does not exist`);
    return r;
  }
  const open_ = (r: { status: DsrStatus }) => !FINAL_STATUSES.includes(r.status);
  const unanswered = (r: { status: DsrStatus }) => !ANSWERED_STATUSES.includes(r.status);
  const requireOpen = (r: { id: string; status: DsrStatus }) => {
    if (!open_(r)) throw new ConflictError(`request ${r.id} is ${r.status}: it can no longer change`);
  };

  /**
   * The public form is open to anyone, and each new request mails a code to
   * the address given. Under one lock over all instances: at most
   * DSR_INTAKE_GLOBAL_RPM new public requests a minute, and an address that
   * already has an open request of the type gets that one back instead of a
   * new one. A request whose code has expired or was guessed at too often no
   * longer counts: someone who files in another person's name holds up that
   * person's own request only while the code it sent is live. Filing again
   * would then be a fresh code and fresh guesses, so once an address and type
   * had DSR_CODE_FAILURES_PER_DAY wrong codes over all its requests of the
   * last day, nothing more is filed for it until they age out.
   */
  async function publicIntakeCheck(trx: Trx, subjectHash: string, type: string, now: Date): Promise<'duplicate' | 'blocked' | undefined> {
    await data.lockPublicIntake(trx);
    if ((await data.publicRequestsSince(trx, new Date(now.getTime() - 60_000))) >= config.dsr.intakeGlobalRpm) throw new IntakeBusyError('we receive too many requests right now: try again in a minute');
    if ((await data.wrongCodesSince(trx, subjectHash, type, new Date(now.getTime() - FAILURE_WINDOW_MS))) >= config.dsr.codeFailuresPerDay) return 'blocked';
    return (await data.liveRequestExists(trx, subjectHash, type, now, MAX_CODE_ATTEMPTS)) ? 'duplicate' : undefined;
  }

  /** `bySignIn`: filed by a signed-in user of the customer console, whose sign-in verified who they are. */
  async function start(raw: unknown, actor: string, channel: 'staff' | 'subject', bySignIn = false) {
    const input = validate(createDsrInput, raw);
    const { client, taskQueue } = temporal();
    const receivedAt = clock.now();
    const d = deadlines(input.jurisdiction, receivedAt.toISOString(), config.dsr.deadlineOverrideS ? { overrideSeconds: config.dsr.deadlineOverrideS } : {});
    const subjectHash = emailHash(input.email);
    const taken = await db.transaction(async (trx) => {
      if (channel === 'subject' && !bySignIn) {
        const held = await publicIntakeCheck(trx, subjectHash, input.type, receivedAt);
        if (held) return { row: undefined };
      }
      const row = await data.insertRequest(trx, {
        type: input.type,
        channel: bySignIn ? 'console' : channel,
        subject_email: input.email,
        subject_email_hash: subjectHash,
        account_id: input.accountId ?? null,
        jurisdiction: input.jurisdiction,
        received_at: receivedAt,
        due_date: d.dueDate,
        due_at: d.dueAt,
        ack_due_at: d.ackDueAt,
        extension_notice_by: d.extensionNoticeBy,
        requested_changes: input.changes ? JSON.stringify(input.changes) : null,
        created_by: actor,
        ...(bySignIn ? { verified_at: receivedAt, verification_method: CONSOLE_SIGN_IN } : {}),
      });
      await appendDsrEvent(trx, row.id, actor, 'received', { type: input.type, channel: bySignIn ? 'console' : channel, jurisdiction: input.jurisdiction }, 'received');
      if (bySignIn) await appendDsrEvent(trx, row.id, actor, 'identity_verified', { method: CONSOLE_SIGN_IN }, 'identity_verified');
      return { row };
    });
    // No request and no second code; the public answer (submit) is the same as for a new one.
    if (!taken.row) return undefined;
    const row = taken.row;
    const wfInput: DsrInput = {
      requestId: row.id,
      type: input.type,
      jurisdiction: input.jurisdiction,
      receivedAt: receivedAt.toISOString(),
      timers: {
        verificationWaitMs: config.dsr.verificationWaitS * 1000,
        reminderBeforeMs: config.dsr.reminderBeforeS.map((s) => s * 1000),
        ...(config.dsr.deadlineOverrideS ? { deadlineOverrideS: config.dsr.deadlineOverrideS } : {}),
      },
    };
    try {
      const wf = { taskQueue, workflowId: workflowIds.dsr(row.id), args: [wfInput] as [DsrInput] };
      if (bySignIn) await client.workflow.signalWithStart('dataSubjectRequest', { ...wf, signal: dsrVerifiedSignal, signalArgs: [{ method: CONSOLE_SIGN_IN, actor }] });
      else await client.workflow.start('dataSubjectRequest', wf);
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    }
    return { id: row.id as string, workflowId: workflowIds.dsr(row.id), type: input.type, status: 'received', dueDate: d.dueDate };
  }

  async function live(id: string): Promise<DsrState | null> {
    try {
      return await handle(id).query(dsrStatusQuery);
    } catch (err) {
      if (err instanceof WorkflowNotFoundError || err instanceof DependencyUnavailableError) return null;
      return null; // no worker to answer right now: the database view stands
    }
  }

  function view(r: any) {
    return {
      id: r.id,
      type: r.type,
      status: r.status,
      channel: r.channel,
      jurisdiction: r.jurisdiction,
      accountId: r.account_id,
      receivedAt: new Date(r.received_at).toISOString(),
      dueDate: typeof r.due_date === 'string' ? r.due_date : new Date(r.due_date).toISOString().slice(0, 10),
      dueAt: new Date(r.due_at).toISOString(),
      extended: r.extended,
      overdue: r.overdue || (unanswered(r) && new Date(r.due_at) <= clock.now()),
      verifiedAt: r.verified_at ? new Date(r.verified_at).toISOString() : null,
      verificationMethod: r.verification_method,
      closedAt: r.closed_at ? new Date(r.closed_at).toISOString() : null,
      failureReason: (r.failure_reason as string | null) ?? null,
      workflowId: workflowIds.dsr(r.id),
    };
  }

  /**
   * What approving a correction would do, for the approver: each field with
   * its value now and the requested one, on which user or account, and
   * whether it will be applied (an account's fields only for its billing
   * contact, see correctableAccounts).
   */
  async function correctionView(r: any) {
    const changes = (r.requested_changes ?? {}) as Correction;
    const subject = r.subject_email ? await findSubject(db, r.subject_email, r.account_id) : { userIds: [], memberAccountIds: [], billingAccountIds: [] };
    const targets = correctableAccounts(subject, r.account_id);
    const shownAccounts = r.account_id ? [r.account_id as string] : targets.length ? targets : subject.memberAccountIds;
    const { users, accounts } = await data.correctionTargets(db, subject.userIds, shownAccounts, CORRECTABLE_FIELDS);
    const rows: { record: 'user' | 'account'; id: string; accountId: string; field: string; from: string | null; to: string | null; applies: boolean }[] = [];
    for (const [field, to] of Object.entries(changes.user ?? {})) {
      for (const u of users) rows.push({ record: 'user', id: u.id, accountId: u.account_id, field, from: u[field] ?? null, to: to ?? null, applies: true });
    }
    for (const [field, to] of Object.entries(changes.account ?? {})) {
      for (const a of accounts) rows.push({ record: 'account', id: a.id, accountId: a.id, field, from: a[field] ?? null, to: to ?? null, applies: targets.includes(a.id) });
    }
    const accountChanges = Object.keys(changes.account ?? {}).length > 0;
    return {
      accounts: accounts.map((a) => ({ id: a.id as string, name: a.name as string, billingContact: targets.includes(a.id) })),
      changes: rows,
      notes: [
        ...(accountChanges && !targets.length ? ['the subject is not the billing contact of the account: its fields will not be changed (refused on third_party_rights)'] : []),
        ...(Object.keys(changes.user ?? {}).length && !users.length ? ['no user has this email address: nothing of a user will change'] : []),
      ],
    };
  }

  /** The requests the signed-in user filed in the console, with the download link of a package that can still be fetched. */
  async function requestsBySignIn(person: { userId: string }) {
    const rows = await data.requestsFiledBy(db, consoleActor(person.userId), CONSOLE_LIST_LIMIT);
    const key = packageKey({ dsr: config.dsr, dataDir: config.dataDir });
    return Promise.all(
      rows.map(async (r) => {
        const e = r.type === 'access' || r.type === 'portability' ? await data.exportOfRequest(db, r.id) : null;
        const usable = e && e.ciphertext && new Date(e.expires_at) > clock.now() && e.downloads < e.max_downloads;
        const link = usable ? signLink(key, e.id, new Date(e.expires_at)) : null;
        return {
          ...view(r),
          package: e ? { expiresAt: new Date(e.expires_at).toISOString(), downloadsLeft: Math.max(0, e.max_downloads - e.downloads), href: link ? `/privacy/packages/${e.id}?expires=${link.expires}&sig=${link.sig}` : null } : null,
        };
      }),
    );
  }

  return {
    /** Compliance staff take a request (by phone, letter, email). */
    create: async (raw: unknown, actor: string) => (await start(raw, actor, 'staff'))!, // staff requests are never held back
    /** The public form: no account needed; the code to the email on record proves identity. */
    submit: async (raw: unknown) => {
      // The request id goes only to the mailbox: whoever knows an address must not learn the id to spend its guesses on.
      await start(raw, 'subject', 'subject');
      return { ...PUBLIC_INTAKE_ANSWER };
    },

    async submitCode(id: string, raw: unknown) {
      const { code } = validate(codeInput, raw);
      const r = await load(id);
      requireOpen(r);
      if (r.verified_at) return { id, verified: true };
      // Counted and checked in one statement, before the code is looked at: concurrent
      // guesses cannot all pass a limit that each read before any of them counted.
      // A code that was not sent or has expired costs no attempt, and the wrong codes
      // of the address's other requests of the type in the last day count too (the
      // public form keeps one live code per address and type, so that sum holds still).
      const storedHash = await data.countCodeAttempt(db, id, {
        maxAttempts: MAX_CODE_ATTEMPTS,
        now: clock.now(),
        since: new Date(clock.now().getTime() - FAILURE_WINDOW_MS),
        failuresPerDay: config.dsr.codeFailuresPerDay,
      });
      if (storedHash === undefined) {
        const now = await load(id);
        if (now.verified_at) return { id, verified: true };
        requireOpen(now);
        if (now.verification_attempts < MAX_CODE_ATTEMPTS && (!now.verification_code_hash || !now.verification_code_expires_at || new Date(now.verification_code_expires_at) <= clock.now())) {
          throw new ConflictError('the code has expired or was not sent yet: file the request again for a new code');
        }
        throw new ConflictError('too many wrong codes: ask us for a new request');
      }
      if (!codeMatches(codeKey({ dsr: config.dsr, dataDir: config.dataDir }), id, code, storedHash)) {
        throw new ValidationError('the code is not correct', [{ field: 'code', message: 'not correct' }]);
      }
      const first = await data.markVerifiedByCode(db, id, clock.now());
      if (first) await appendDsrEvent(db, id, 'subject', 'identity_verified', { method: 'email_code' }, 'identity_verified');
      await handle(id).signal(dsrVerifiedSignal, { method: 'email_code', actor: 'subject' });
      return { id, verified: true };
    },

    async verify(id: string, raw: unknown, actor: string) {
      const input = validate(verifyInput, raw);
      const r = await load(id);
      requireOpen(r);
      if (!r.verified_at) {
        await data.markVerified(db, id, clock.now(), input.method);
        await appendDsrEvent(db, id, actor, 'identity_verified', { method: input.method, note: input.note }, 'identity_verified');
      }
      await handle(id).signal(dsrVerifiedSignal, { method: 'manual', actor });
      return view(await load(id));
    },

    async extend(id: string, raw: unknown, actor: string) {
      const { reason } = validate(extendInput, raw);
      const r = await load(id);
      requireOpen(r);
      if (r.extended) throw new ConflictError(`request ${id} was already extended once`);
      if (clock.now() >= new Date(r.extension_notice_by)) throw new ConflictError(`an extension had to be announced by ${new Date(r.extension_notice_by).toISOString()}`);
      await data.setExtensionReason(db, id, reason);
      await appendDsrEvent(db, id, actor, 'extension_requested', { reason }, 'extension_requested');
      await handle(id).signal(dsrExtendSignal, { actor });
      return { id, extending: true };
    },

    async refuse(id: string, raw: unknown, actor: string) {
      const input = validate(refuseInput, raw);
      const r = await load(id);
      requireOpen(r);
      if (r.status === 'in_progress') throw new ConflictError(`request ${id} is being fulfilled: too late to refuse`);
      const items = input.items?.length ? input.items : ['*'];
      const refusals = [...(r.refusals as unknown[]), ...items.map((item) => ({ item, ground: input.ground, explanation: input.explanation, by: actor }))];
      await data.setRefusals(db, id, refusals);
      await appendDsrEvent(db, id, actor, 'refusal_recorded', { items, ground: input.ground }, `refusal:${items.join(',')}:${input.ground}`);
      await handle(id).signal(dsrRefuseSignal, { items: items.map((item) => ({ item, ground: input.ground })), actor });
      return { id, refused: items };
    },

    async withdraw(id: string, actor: string) {
      const r = await load(id);
      requireOpen(r);
      await appendDsrEvent(db, id, actor, 'withdrawal_requested', {}, 'withdrawal_requested');
      await handle(id).signal(dsrWithdrawSignal, { actor });
      return { id, withdrawing: true };
    },

    async approve(id: string, actor: string) {
      const r = await load(id);
      requireOpen(r);
      if (r.type !== 'correction') throw new ConflictError('only corrections need approval');
      // Only a verified correction that waits for it: approving earlier would let it through the
      // moment identity is confirmed, unseen. Workflows started before the state was written to
      // PostgreSQL say it in their query only.
      const waiting = r.status === 'awaiting_approval' || (r.status === 'verifying' && r.verified_at && (await live(id))?.status === 'awaiting_approval');
      if (!waiting) throw new ConflictError(`request ${id} is ${r.status}: only a correction awaiting approval can be approved`);
      await appendDsrEvent(db, id, actor, 'correction_approved', { fields: Object.entries(r.requested_changes ?? {}).flatMap(([rec, f]) => Object.keys(f as object).map((k) => `${rec}.${k}`)) }, 'correction_approved');
      await handle(id).signal(dsrApproveSignal, { actor });
      return { id, approved: true };
    },

    async get(id: string) {
      const r = await load(id);
      const events = await data.requestEvents(db, id);
      const evidence = await data.erasureEvidence(db, id);
      return {
        ...view(r),
        refusals: r.refusals,
        response: r.response,
        live: await live(id),
        correction: r.type === 'correction' ? await correctionView(r) : null,
        events: events.map((e) => ({ ...e, at: new Date(e.at).toISOString() })),
        erasureEvidence: evidence.map((e) => ({ ...e, at: new Date(e.at).toISOString() })),
      };
    },

    async list(raw: unknown) {
      const input = validate(listDsrInput, raw);
      // A cursor that names no request would compare with NULL and end the listing early, as if there were no more.
      if (input.after && !(await data.requestExists(db, input.after))) {
        throw new ValidationError('after: no such request', [{ field: 'after', message: 'must be the id of the last request of the previous page' }]);
      }
      return (await data.listRequests(db, input, ANSWERED_STATUSES, clock.now())).map(view);
    },

    /** Compliance staff download a request's package (to hand it over another way); audited like the subject's downloads. */
    async staffDownload(id: string, actor: string) {
      const r = await load(id);
      const e = await data.exportOfRequest(db, r.id);
      if (!e || !e.ciphertext) throw new GoneError('there is no package for this request (none was made, or it expired)');
      const key = packageKey({ dsr: config.dsr, dataDir: config.dataDir });
      await appendDsrEvent(db, r.id, actor, 'package_downloaded_by_staff', {}, `staff-download:${actor}:${clock.now().toISOString()}`);
      return open(key, { ciphertext: e.ciphertext, iv: e.iv, authTag: e.auth_tag }, r.id);
    },

    /**
     * The customer console: a signed-in user files a request about themself (their
     * email, their account), verified by the sign-in, fulfilled by the workflow as any
     * other. One open request per type: filing it again gives back the open one.
     */
    async fileBySignIn(person: { userId: string; accountId: string }, raw: { type: ConsoleDsrType; changes?: Correction }) {
      const user = await data.consoleUser(db, person.userId, person.accountId);
      if (!user) throw new NotFoundError('your user no longer exists');
      const actor = consoleActor(person.userId);
      const open = await data.openRequestFiledBy(db, actor, raw.type);
      if (open) return { id: open, existing: true };
      const r = await start({ type: raw.type, email: user.email, accountId: person.accountId, ...(raw.changes ? { changes: raw.changes } : {}) }, actor, 'subject', true);
      return { id: r!.id, existing: false };
    },

    requestsBySignIn,

    /** One request the signed-in user filed in the console; any other id is not found. */
    async requestBySignIn(person: { userId: string }, id: string) {
      const found = (await requestsBySignIn(person)).find((r) => r.id === id);
      if (!found) throw new NotFoundError('no such request of yours');
      return found;
    },

    /** The model providers the signed-in user's API requests went to, as the access answer lists them. */
    async providersOfSignedIn(person: { userId: string; accountId: string }) {
      const user = await data.consoleUser(db, person.userId, person.accountId);
      if (!user) return [];
      const subject = await findSubject(db, user.email, person.accountId);
      return recipientsReceived({ providersReceived: await providersReceived(db, subject), otherRecipients: [], hasPayments: false, emailed: false });
    },

    /** Usage per user and model in [from, to), without subjects who restricted processing or objected (see analytics.data.ts). */
    usageAnalytics: (window: { from: string; to: string }) => usageAnalytics(db, window),

    /** A subject's package through its signed link; every download is audited. */
    async download(exportId: string, query: Record<string, unknown>) {
      const expires = Number(query.expires);
      const sig = typeof query.sig === 'string' ? query.sig : '';
      const key = packageKey({ dsr: config.dsr, dataDir: config.dataDir });
      if (!z.uuid().safeParse(exportId).success || !Number.isFinite(expires) || !sig) throw new NotFoundError('no such package');
      const check = verifyLink(key, exportId, expires, sig, clock.now());
      if (check === 'invalid') throw new NotFoundError('no such package');
      return db.transaction(async (trx) => {
        const e = await data.lockExport(trx, exportId);
        if (!e || !e.ciphertext || check === 'expired' || new Date(e.expires_at) < clock.now()) throw new GoneError('this link has expired: ask us for a new copy');
        if (e.downloads >= e.max_downloads) throw new GoneError('this link was used as often as allowed: ask us for a new copy');
        await data.countDownload(trx, exportId);
        await appendDsrEvent(trx, e.request_id, 'subject', 'package_downloaded', { download: e.downloads + 1 }, `download:${e.downloads + 1}`);
        return open(key, { ciphertext: e.ciphertext, iv: e.iv, authTag: e.auth_tag }, e.request_id);
      });
    },
  };
}

export type PrivacyService = ReturnType<typeof privacyService>;
