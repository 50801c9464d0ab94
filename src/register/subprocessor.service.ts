import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import { z } from 'zod';
import type { Clock } from '../clock';
import type { Db, Trx } from '../db/knex';
import { ConflictError, NotFoundError, ValidationError } from '../errors';
import { recordAccountEvents } from '../notifications/events.data';
import { eventEmail, eventEmailKey } from '../notifications/events.rules';
import { validate } from '../shared/validate';
import { oneLine } from '../shared/text';
import { pageLimit } from '../staff/schemas';
import { workflowIds } from '../temporal/conventions';
import type { SubprocessorChangeInput } from '../../workflows/messages';
import * as data from './subprocessor.data';
import { decide, effectiveAt, subprocessorChangeOf, type SubprocessorFacts } from './subprocessor.rules';

/**
 * Sub-processor changes (issue 25 part 6; docs/processing-register.md#sub-processor-changes).
 *
 * A register change that adds a sub-processor, or a country to one, is
 * recorded with a pending notice for every account with a data-processing
 * agreement, in the register's own transaction (`recordSubprocessorChange`),
 * so the gateway holds the recipient back from the moment the change exists.
 * The `subprocessor-change:{id}` workflow then tells each account (an account
 * event, which is emailed and delivered to its webhooks, plus a copy to its
 * privacy contact), waits out the notice period and lets the recipient in
 * where the notice is still pending. Accounts (or staff for them) accept
 * early or object; an objection keeps the recipient out.
 */

/** Accounts told per transaction of the announcement (one heartbeat each). */
const ANNOUNCE_PAGE = 500;
/** Notices an account's list shows at most. */
const ACCOUNT_NOTICES_MAX = 200;

const line = oneLine;

const uuid = (field: string) => z.uuid({ error: `${field} must be an id (UUID)` });

/** POST /billing/accounts/:id/processing-agreement */
export const setAgreementInput = z.strictObject({
  agreementRef: line('agreementRef', 1, 200),
  signedOn: z.iso.date({ error: 'signedOn must be a real date (YYYY-MM-DD)' }),
  reason: line('reason', 3, 500),
});
/** A decision on a notice, by the account (its management key) or by staff for it (with a reason). */
export const decideInput = z.strictObject({
  decision: z.enum(['accept', 'object'], { error: 'decision must be accept or object' }),
  reason: line('reason', 3, 500).optional(),
});
export const listChangesInput = z.strictObject({
  limit: pageLimit(50),
  open: z.enum(['true', 'false'], { error: 'open must be true or false' }).optional(),
});
export const changeNoticesInput = z.strictObject({ limit: pageLimit(100), after: uuid('after').optional() });

export interface SubprocessorChangeView {
  id: string;
  workflowId: string;
  recipientId: string;
  recipient: string;
  recipientKind: string;
  kind: 'recipient_added' | 'countries_added';
  countries: string[];
  noticePeriodS: number;
  announcedAt: string;
  effectiveAt: string;
  endedAt: string | null;
}

function changeView(r: data.SubprocessorChangeRow): SubprocessorChangeView {
  return {
    id: r.id,
    workflowId: workflowIds.subprocessorChange(r.id),
    recipientId: r.recipient_id,
    recipient: r.recipient_name,
    recipientKind: r.recipient_kind,
    kind: r.kind,
    countries: r.countries,
    noticePeriodS: Math.round(Number(r.notice_period_ms) / 1000),
    announcedAt: new Date(r.announced_at).toISOString(),
    effectiveAt: new Date(r.effective_at).toISOString(),
    endedAt: r.ended_at ? new Date(r.ended_at).toISOString() : null,
  };
}

function noticeView(n: data.NoticeRow) {
  return {
    changeId: n.change_id,
    accountId: n.account_id,
    status: n.status,
    /** Whether the recipient is held back from the account's traffic by this notice. */
    holding: n.status === 'pending' || n.status === 'objected',
    notifiedAt: n.notified_at ? new Date(n.notified_at).toISOString() : null,
    decidedBy: n.decided_by,
    decidedAt: n.decided_at ? new Date(n.decided_at).toISOString() : null,
  };
}

const isUuid = (v: string) => z.uuid().safeParse(v).success;

/**
 * In the register's transaction: records the change a recipient's new entry
 * (before = null) or update means for agreement accounts, with their pending
 * notices. Null when it means nothing to them. The caller starts the
 * workflow after commit (`startSubprocessorChange`).
 */
export async function recordSubprocessorChange(
  trx: Trx,
  c: { registerChangeId: string; recipientId: string; before: SubprocessorFacts | null; after: SubprocessorFacts; noticePeriodMs: number; at: Date },
): Promise<(SubprocessorChangeInput & { accounts: number }) | null> {
  const change = subprocessorChangeOf(c.before, c.after);
  if (!change) return null;
  const { id, accounts } = await data.insertChangeWithNotices(trx, {
    registerChangeId: c.registerChangeId,
    recipientId: c.recipientId,
    kind: change.kind,
    countries: change.countries,
    noticePeriodMs: c.noticePeriodMs,
    announcedAt: c.at,
    effectiveAt: effectiveAt(c.at, c.noticePeriodMs),
  });
  return { changeId: id, announcedAtMs: c.at.getTime(), noticePeriodMs: c.noticePeriodMs, accounts };
}

/** Starts `subprocessor-change:{id}`; a second start finds the first. */
export async function startSubprocessorChange(client: Client, taskQueue: string, input: SubprocessorChangeInput): Promise<{ workflowId: string; started: boolean }> {
  const workflowId = workflowIds.subprocessorChange(input.changeId);
  try {
    await client.workflow.start('subprocessorChange', { workflowId, taskQueue, args: [input], workflowIdReusePolicy: 'ALLOW_DUPLICATE_FAILED_ONLY' });
    return { workflowId, started: true };
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) return { workflowId, started: false };
    throw err;
  }
}

export function subprocessorService(deps: { db: Db; clock: Clock; temporal?: { client: Client; taskQueue: string } }) {
  const { db, clock } = deps;

  async function change(id: string) {
    const r = isUuid(id) ? await data.findChange(db, id) : undefined;
    if (!r) throw new NotFoundError(`sub-processor change ${id} does not exist`);
    return r;
  }

  async function account(id: string) {
    if (!isUuid(id) || !(await data.accountExists(db, id))) throw new NotFoundError(`account ${id} does not exist`);
  }

  return {
    agreements: {
      /** The account's data-processing agreement, or null. */
      async get(accountId: string) {
        await account(accountId);
        const r = await data.findAgreement(db, accountId);
        return r ? { accountId, agreementRef: r.agreement_ref, signedOn: r.signed_on, setBy: r.set_by, reason: r.reason, setAt: new Date(r.set_at).toISOString() } : null;
      },
      /**
       * Records (or replaces) the agreement. From now on the account is told
       * of, and held back from, each new sub-processor; the recipients the
       * register lists today are what it agreed to.
       */
      async set(accountId: string, raw: unknown, actor: string) {
        const input = validate(setAgreementInput, raw);
        await account(accountId);
        await db.transaction((trx) => data.upsertAgreement(trx, { account_id: accountId, agreement_ref: input.agreementRef, signed_on: input.signedOn, set_by: actor, reason: input.reason, set_at: clock.now() }));
        return (await this.get(accountId))!;
      },
    },

    changes: {
      async list(raw: unknown = {}) {
        const q = validate(listChangesInput, raw ?? {});
        return (await data.listChanges(db, { limit: q.limit, open: q.open === 'true' })).map(changeView);
      },
      /** One change with how many of its notices are in each status. */
      async get(id: string) {
        const r = await change(id);
        return { ...changeView(r), notices: await data.noticeCounts(db, r.id) };
      },
      /** A change's notices, by account id. */
      async notices(id: string, raw: unknown = {}) {
        const q = validate(changeNoticesInput, raw ?? {});
        await change(id);
        return (await data.noticesOfChange(db, id, { limit: q.limit, after: q.after })).map(noticeView);
      },
      /**
       * Starts the workflow of every change whose period has not ended (for
       * a start that failed after the register change committed; harmless
       * otherwise: a running or finished change is found, not started again).
       */
      async resume() {
        if (!deps.temporal) throw new ConflictError('no Temporal connection: cannot start notice workflows');
        const out: { changeId: string; workflowId: string; started: boolean }[] = [];
        for (const id of await data.openChangeIds(db, 1000)) {
          const r = (await data.findChange(db, id))!;
          const s = await startSubprocessorChange(deps.temporal.client, deps.temporal.taskQueue, {
            changeId: id,
            announcedAtMs: new Date(r.announced_at).getTime(),
            noticePeriodMs: Number(r.notice_period_ms),
          });
          out.push({ changeId: id, ...s });
        }
        return out;
      },
    },

    notices: {
      /** The account's notices, newest first, with what each change is. */
      async ofAccount(accountId: string) {
        await account(accountId);
        return (await data.noticesOfAccount(db, accountId, ACCOUNT_NOTICES_MAX)).map((n) => ({ ...changeView({ ...n, id: n.change_id }), ...noticeView(n) }));
      },
      /** One notice of the account with its change; null when there is none. */
      async get(changeId: string, accountId: string) {
        if (!isUuid(changeId) || !isUuid(accountId)) return null;
        const n = await data.noticeOfAccount(db, changeId, accountId);
        return n ? { ...changeView({ ...n, id: n.change_id }), ...noticeView(n) } : null;
      },
      /**
       * Accept (the recipient may receive the account's traffic now) or
       * object (it never does, until the account accepts). `actor` is
       * `account:{keyId}` for the account's own decision; anyone else
       * (`staff:{id}`, `cli:{user}`) records the account's decision with the
       * reason it gave.
       */
      async decide(changeId: string, accountId: string, raw: unknown, actor: string) {
        const input = validate(decideInput, raw);
        if (!actor.startsWith('account:') && !input.reason) {
          throw new ValidationError('invalid input: reason: staff record a decision with the reason the account gave', [{ field: 'reason', message: 'required when staff record a decision' }]);
        }
        if (!isUuid(changeId) || !isUuid(accountId)) throw new NotFoundError(`no notice of change ${changeId} for account ${accountId}`);
        return db.transaction(async (trx) => {
          const n = await data.findNotice(trx, changeId, accountId, true);
          if (!n) throw new NotFoundError(`no notice of change ${changeId} for account ${accountId}`);
          const next = decide(n.status, input.decision);
          if (!next) return { ...noticeView(n), changed: false };
          const who = input.reason ? `${actor} (${input.reason})` : actor;
          return { ...noticeView(await data.setNoticeStatus(trx, changeId, accountId, next, who.slice(0, 600), clock.now())), changed: true };
        });
      },
    },

    /**
     * The workflow's first step: the account event (email and webhooks) and
     * the privacy contact's copy for each account not told yet, a page per
     * transaction, each at most once (the event's dedupe key, the copy's
     * outbox key, notified_at).
     */
    async announce(changeId: string, heartbeat: () => void = () => undefined): Promise<{ notified: number }> {
      const c = changeView(await change(changeId));
      let notified = 0;
      for (;;) {
        const page = await data.unnotified(db, changeId, ANNOUNCE_PAGE);
        if (page.length === 0) return { notified };
        await db.transaction(async (trx) => {
          const events = await recordAccountEvents(
            trx,
            page.map((p) => ({
              accountId: p.account_id,
              type: 'subprocessor.announced' as const,
              dedupeKey: `subprocessor:${changeId}:${p.account_id}`,
              data: {
                changeId,
                recipient: c.recipient,
                recipientKind: c.recipientKind,
                change: c.kind,
                countries: c.countries.join(', '),
                effectiveAt: c.effectiveAt,
                links: { notice: `/v1/subprocessor-notices/${changeId}` },
              },
            })),
          );
          const contacts = new Map(page.map((p) => [p.account_id, p.privacy_contact]));
          await data.queueContactCopy(
            trx,
            events.flatMap((e) => {
              const to = contacts.get(e.account_id);
              if (!to) return [];
              const m = eventEmail({ id: e.id, type: e.type, accountId: e.account_id, data: e.data });
              return [{ idempotency_key: `${eventEmailKey(e.id)}:privacy-contact`, recipient: to, subject: m.subject, body: m.body }];
            }),
          );
          await data.markNotified(trx, changeId, page.map((p) => p.account_id), clock.now());
        });
        notified += page.length;
        heartbeat();
      }
    },

    /** The workflow's last step: pending notices take effect, the change ends. */
    async end(changeId: string): Promise<{ effective: number }> {
      await change(changeId);
      return db.transaction((trx) => data.endChange(trx, changeId, clock.now()));
    },
  };
}

export type SubprocessorService = ReturnType<typeof subprocessorService>;
