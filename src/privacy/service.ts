import { timingSafeEqual } from 'node:crypto';
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, type Client } from '@temporalio/client';
import { z } from 'zod';
import type { Clock } from '../clock';
import type { Config } from '../config';
import { appendDsrEvent, codeHash, emailHash } from '../db/dsr';
import type { Db } from '../db/knex';
import { ConflictError, DependencyUnavailableError, GoneError, NotFoundError, ValidationError } from '../errors';
import { validate } from '../staff/validate';
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
import { deadlines, JURISDICTIONS } from './deadlines';
import { open, packageKey, verifyLink } from './packages';
import { CORRECTABLE_FIELDS, DSR_TYPES, FINAL_STATUSES, REFUSAL_GROUNDS, type DsrStatus } from './rights';

/**
 * Data-subject requests for compliance staff (CLI, admin API) and subjects
 * (the public /privacy routes). Each request is the workflow `dsr:{id}`;
 * this module validates, writes what staff said to PostgreSQL (notes,
 * explanations, reasons) and signals the workflow with codes and staff ids.
 */
const uuid = (what: string) => z.uuid({ error: `${what} must be an id (UUID)` });
const nullableText = (max: number) => z.string().trim().max(max).nullable();
const correction = z.strictObject({
  user: z.strictObject(Object.fromEntries(CORRECTABLE_FIELDS.user.map((f) => [f, nullableText(200).optional()])) as Record<(typeof CORRECTABLE_FIELDS.user)[number], z.ZodOptional<z.ZodNullable<z.ZodString>>>).optional(),
  account: z
    .strictObject(Object.fromEntries(CORRECTABLE_FIELDS.account.map((f) => [f, nullableText(200).optional()])) as Record<(typeof CORRECTABLE_FIELDS.account)[number], z.ZodOptional<z.ZodNullable<z.ZodString>>>)
    .optional(),
});

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
  status: z.enum(['open', ...(['received', 'verifying', 'in_progress', 'awaiting_approval', 'completed', 'partially_completed', 'refused', 'withdrawn'] as const)]).optional(),
  overdue: z.enum(['true', 'false']).optional(),
  type: z.enum(DSR_TYPES).optional(),
  limit: z.coerce.number().int().min(1).max(500).default(100),
});
export const codeInput = z.strictObject({ code: z.string().regex(/^\d{6}$/, 'code must be the 6 digits from the email') });

const MAX_CODE_ATTEMPTS = 5;

export function dsrService(deps: { db: Db; clock: Clock; config: Config; client?: Client; taskQueue?: string }) {
  const { db, clock, config } = deps;
  const temporal = () => {
    if (!deps.client || !deps.taskQueue) throw new DependencyUnavailableError('data-subject requests need Temporal');
    return { client: deps.client, taskQueue: deps.taskQueue };
  };
  const handle = (id: string) => temporal().client.workflow.getHandle(workflowIds.dsr(id));

  async function load(id: string) {
    if (!z.uuid().safeParse(id).success) throw new NotFoundError(`data-subject request ${id} does not exist`);
    const r = await db('dsr_requests').where({ id }).first();
    if (!r) throw new NotFoundError(`data-subject request ${id} does not exist`);
    return r;
  }
  const open_ = (r: { status: DsrStatus }) => !FINAL_STATUSES.includes(r.status);
  const requireOpen = (r: { id: string; status: DsrStatus }) => {
    if (!open_(r)) throw new ConflictError(`request ${r.id} is ${r.status}: it can no longer change`);
  };

  async function start(raw: unknown, actor: string, channel: 'staff' | 'subject') {
    const input = validate(createDsrInput, raw);
    const { client, taskQueue } = temporal();
    const receivedAt = clock.now();
    const d = deadlines(input.jurisdiction, receivedAt.toISOString(), config.dsr.deadlineOverrideS ? { overrideSeconds: config.dsr.deadlineOverrideS } : {});
    const [row] = await db('dsr_requests')
      .insert({
        type: input.type,
        channel,
        subject_email: input.email,
        subject_email_hash: emailHash(input.email),
        account_id: input.accountId ?? null,
        jurisdiction: input.jurisdiction,
        received_at: receivedAt,
        due_date: d.dueDate,
        due_at: d.dueAt,
        ack_due_at: d.ackDueAt,
        extension_notice_by: d.extensionNoticeBy,
        requested_changes: input.changes ? JSON.stringify(input.changes) : null,
        created_by: actor,
      })
      .returning(['id', 'status', 'due_date', 'due_at']);
    await appendDsrEvent(db, row.id, actor, 'received', { type: input.type, channel, jurisdiction: input.jurisdiction }, 'received');
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
      await client.workflow.start('dataSubjectRequest', { taskQueue, workflowId: workflowIds.dsr(row.id), args: [wfInput] });
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
      overdue: r.overdue || (open_(r) && new Date(r.due_at) <= clock.now()),
      verifiedAt: r.verified_at ? new Date(r.verified_at).toISOString() : null,
      verificationMethod: r.verification_method,
      closedAt: r.closed_at ? new Date(r.closed_at).toISOString() : null,
      workflowId: workflowIds.dsr(r.id),
    };
  }

  return {
    /** Compliance staff take a request (by phone, letter, email). */
    create: (raw: unknown, actor: string) => start(raw, actor, 'staff'),
    /** The public form: no account needed; the code to the email on record proves identity. */
    submit: async (raw: unknown) => {
      const r = await start(raw, 'subject', 'subject');
      return { id: r.id, status: r.status, dueDate: r.dueDate, next: 'We sent a code to the email address. Send it to /privacy/requests/{id}/verify.' };
    },

    async submitCode(id: string, raw: unknown) {
      const { code } = validate(codeInput, raw);
      const r = await load(id);
      requireOpen(r);
      if (r.verified_at) return { id, verified: true };
      if (r.verification_attempts >= MAX_CODE_ATTEMPTS) throw new ConflictError('too many wrong codes: ask us for a new request');
      if (!r.verification_code_hash || !r.verification_code_expires_at || new Date(r.verification_code_expires_at) < clock.now()) {
        throw new ConflictError('the code has expired or was not sent yet');
      }
      const ok = timingSafeEqual(Buffer.from(codeHash(id, code)), Buffer.from(r.verification_code_hash));
      if (!ok) {
        await db('dsr_requests').where({ id }).increment('verification_attempts', 1);
        throw new ValidationError('the code is not correct', [{ field: 'code', message: 'not correct' }]);
      }
      await db('dsr_requests').where({ id }).update({ verified_at: clock.now(), verification_method: 'email_code', verification_code_hash: null });
      await appendDsrEvent(db, id, 'subject', 'identity_verified', { method: 'email_code' }, 'identity_verified');
      await handle(id).signal(dsrVerifiedSignal, { method: 'email_code', actor: 'subject' });
      return { id, verified: true };
    },

    async verify(id: string, raw: unknown, actor: string) {
      const input = validate(verifyInput, raw);
      const r = await load(id);
      requireOpen(r);
      if (!r.verified_at) {
        await db('dsr_requests').where({ id }).update({ verified_at: clock.now(), verification_method: input.method });
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
      await db('dsr_requests').where({ id }).update({ extension_reason: reason });
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
      await db('dsr_requests').where({ id }).update({ refusals: JSON.stringify(refusals) });
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
      await appendDsrEvent(db, id, actor, 'correction_approved', { fields: Object.entries(r.requested_changes ?? {}).flatMap(([rec, f]) => Object.keys(f as object).map((k) => `${rec}.${k}`)) }, 'correction_approved');
      await handle(id).signal(dsrApproveSignal, { actor });
      return { id, approved: true };
    },

    async get(id: string) {
      const r = await load(id);
      const events = await db('dsr_events').where({ request_id: id }).orderBy('id').select('at', 'actor', 'action', 'detail');
      const evidence = await db('erasure_evidence').where({ request_id: id }).orderBy('id').select('category', 'action', 'rows', 'at');
      return {
        ...view(r),
        refusals: r.refusals,
        response: r.response,
        live: await live(id),
        events: events.map((e) => ({ ...e, at: new Date(e.at).toISOString() })),
        erasureEvidence: evidence.map((e) => ({ ...e, at: new Date(e.at).toISOString() })),
      };
    },

    async list(raw: unknown) {
      const input = validate(listDsrInput, raw);
      const q = db('dsr_requests').orderBy('due_at').limit(input.limit);
      if (input.status === 'open') q.whereNotIn('status', FINAL_STATUSES as DsrStatus[]);
      else if (input.status) q.where({ status: input.status });
      if (input.type) q.where({ type: input.type });
      if (input.overdue === 'true') q.where((w) => w.where({ overdue: true }).orWhere((o) => o.whereNotIn('status', FINAL_STATUSES as DsrStatus[]).where('due_at', '<=', clock.now())));
      return (await q).map(view);
    },

    /** Compliance staff download a request's package (to hand it over another way); audited like the subject's downloads. */
    async staffDownload(id: string, actor: string) {
      const r = await load(id);
      const e = await db('dsr_exports').where({ request_id: r.id }).first();
      if (!e || !e.ciphertext) throw new GoneError('there is no package for this request (none was made, or it expired)');
      const key = packageKey({ dsr: config.dsr, dataDir: config.dataDir });
      await appendDsrEvent(db, r.id, actor, 'package_downloaded_by_staff', {}, `staff-download:${actor}:${clock.now().toISOString()}`);
      return open(key, { ciphertext: e.ciphertext, iv: e.iv, authTag: e.auth_tag }, r.id);
    },

    /** A subject's package through its signed link; every download is audited. */
    async download(exportId: string, query: Record<string, unknown>) {
      const expires = Number(query.expires);
      const sig = typeof query.sig === 'string' ? query.sig : '';
      const key = packageKey({ dsr: config.dsr, dataDir: config.dataDir });
      if (!z.uuid().safeParse(exportId).success || !Number.isFinite(expires) || !sig) throw new NotFoundError('no such package');
      const check = verifyLink(key, exportId, expires, sig, clock.now());
      if (check === 'invalid') throw new NotFoundError('no such package');
      return db.transaction(async (trx) => {
        const e = await trx('dsr_exports').where({ id: exportId }).forUpdate().first();
        if (!e || !e.ciphertext || check === 'expired' || new Date(e.expires_at) < clock.now()) throw new GoneError('this link has expired: ask us for a new copy');
        if (e.downloads >= e.max_downloads) throw new GoneError('this link was used as often as allowed: ask us for a new copy');
        await trx('dsr_exports').where({ id: exportId }).increment('downloads', 1);
        await appendDsrEvent(trx, e.request_id, 'subject', 'package_downloaded', { download: e.downloads + 1 }, `download:${e.downloads + 1}`);
        return open(key, { ciphertext: e.ciphertext, iv: e.iv, authTag: e.auth_tag }, e.request_id);
      });
    },
  };
}

export type DsrService = ReturnType<typeof dsrService>;
