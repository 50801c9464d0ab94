import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import { z } from 'zod';
import type { Clock } from '../clock';
import type { Config } from '../config';
import type { Db } from '../db/knex';
import { ConflictError, NotFoundError, ValidationError } from '../errors';
import { createMailer, type Mailer } from '../notify/mailer';
import { oneLine } from '../shared/text';
import { validate } from '../shared/validate';
import { workflowIds } from '../temporal/conventions';
import type { PolicyPublishedInput } from '../../workflows/messages';
import * as data from './policyVersions.data';
import {
  ACTOR_MAX,
  hasControlExceptBreaks,
  isVersion,
  OWNER_PAGE,
  policyEmail,
  policyEmailPrefix,
  SUMMARY_MAX,
  TITLE_MAX,
  URL_MAX,
  urlProblem,
  versionToAcknowledge,
} from './policyVersions.rules';

/**
 * Privacy policy versions (issue 26; docs/customer-console.md#policy-changes).
 *
 * Compliance staff publish a version; a material one shows every signed-in
 * customer a notice until they acknowledge it, and starts the
 * `policy-published:{version}` workflow, which queues one email per account
 * owner (the outbox key `policy:{version}:{userId}`) and sends them.
 */

/** Versions a list shows at most. */
const LIST_MAX = 200;
/** Emails sent per activity call (one short transaction each). */
const SEND_BATCH = 500;

const versionField = z
  .string({ error: 'version must be text' })
  .trim()
  .refine(isVersion, 'version must be 1-40 letters, digits, dots, dashes or underscores, starting with a letter or digit (e.g. 2026-12 or v3.1)');

/** The console form sends the checkbox as "on"/"1"/"true" or not at all; the API sends a boolean. */
const materialField = z
  .union([z.boolean(), z.enum(['on', '1', 'true', '0', 'false', ''])], { error: 'material must be true or false' })
  .optional()
  .transform((v) => v === true || v === 'on' || v === '1' || v === 'true');

/** POST /privacy/policy-versions and the console form. */
export const publishInput = z.strictObject({
  version: versionField,
  title: oneLine('title', 1, TITLE_MAX),
  summary: z
    .string({ error: 'summary must be text' })
    .trim()
    .min(1, 'summary must not be empty')
    .max(SUMMARY_MAX, `summary must be at most ${SUMMARY_MAX} characters`)
    .refine((v) => !hasControlExceptBreaks(v), 'summary must be text without control characters'),
  url: z
    .string({ error: 'url must be text' })
    .trim()
    .max(URL_MAX, `url must be at most ${URL_MAX} characters`)
    .optional()
    .transform((v) => (v === undefined || v === '' ? null : v))
    .superRefine((v, ctx) => {
      const problem = v === null ? null : urlProblem(v);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    }),
  material: materialField,
});

export interface PolicyVersionView {
  version: string;
  title: string;
  summary: string;
  url: string | null;
  material: boolean;
  publishedAt: string;
  publishedBy: string;
}

const view = (r: data.PolicyVersionRow): PolicyVersionView => ({
  version: r.version,
  title: r.title,
  summary: r.summary,
  url: r.url,
  material: r.material,
  publishedAt: new Date(r.published_at).toISOString(),
  publishedBy: r.published_by,
});

/** What a signed-in user is shown until they acknowledge it. */
export type PolicyNotice = Pick<PolicyVersionView, 'version' | 'title' | 'summary' | 'url' | 'publishedAt'>;

/** Starts `policy-published:{version}`; a second start finds the first. */
export async function startPolicyPublished(client: Client, taskQueue: string, input: PolicyPublishedInput): Promise<{ workflowId: string; started: boolean }> {
  const workflowId = workflowIds.policyPublished(input.version);
  try {
    await client.workflow.start('policyPublished', { workflowId, taskQueue, args: [input], workflowIdReusePolicy: 'ALLOW_DUPLICATE_FAILED_ONLY' });
    return { workflowId, started: true };
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) return { workflowId, started: false };
    throw err;
  }
}

export interface PolicyVersionsDeps {
  db: Db;
  clock: Clock;
  /** Where the owners' email workflow starts; absent, publishing a material version says it was not started. */
  temporal?: { client: Client; taskQueue: string };
  onStartError?: (err: unknown) => void;
  /** For sending the owners' emails (the worker's activities). */
  mail?: Config['mail'];
  mailer?: Mailer;
  /** Owners per queueing page; OWNER_PAGE unless a test pages smaller. */
  ownerPage?: number;
}

export function policyVersionsService(deps: PolicyVersionsDeps) {
  const { db, clock } = deps;

  async function material(version: string): Promise<data.PolicyVersionRow> {
    const r = isVersion(version) ? await data.findVersion(db, version) : undefined;
    if (!r) throw new NotFoundError(`privacy policy version ${version} does not exist`);
    if (!r.material) throw new ValidationError(`privacy policy version ${version} is not material: its publication emails nobody`);
    return r;
  }

  async function start(version: string): Promise<{ workflowId: string; workflowStarted: boolean }> {
    const workflowId = workflowIds.policyPublished(version);
    const t = deps.temporal;
    if (!t) return { workflowId, workflowStarted: false };
    try {
      await startPolicyPublished(t.client, t.taskQueue, { version });
      return { workflowId, workflowStarted: true };
    } catch (err) {
      deps.onStartError?.(err);
      return { workflowId, workflowStarted: false };
    }
  }

  return {
    /** Newest first, with how many users acknowledged each. */
    async list() {
      const rows = await data.listVersions(db, LIST_MAX);
      const acks = await data.acknowledgementCounts(db, rows.map((r) => r.version));
      return rows.map((r) => ({ ...view(r), acknowledgements: acks.get(r.version) ?? 0 }));
    },

    async get(version: string): Promise<PolicyVersionView> {
      const r = isVersion(version) ? await data.findVersion(db, version) : undefined;
      if (!r) throw new NotFoundError(`privacy policy version ${version} does not exist`);
      return view(r);
    },

    /**
     * Publishes a version (`actor`: `staff:{id}`, `cli:{user}`). A material
     * one starts the owners' email workflow after the commit; when that
     * start fails the version stands and `resumeEmails` starts it again.
     */
    async publish(raw: unknown, actor: string): Promise<PolicyVersionView & { workflowId?: string; workflowStarted?: boolean }> {
      const input = validate(publishInput, raw);
      let row: data.PolicyVersionRow;
      try {
        row = await data.insertVersion(db, {
          version: input.version,
          title: input.title,
          summary: input.summary,
          url: input.url,
          material: input.material,
          published_at: clock.now(),
          published_by: actor.slice(0, ACTOR_MAX),
        });
      } catch (err) {
        if ((err as { code?: string }).code === '23505') throw new ConflictError(`version ${input.version} is already published; a changed policy needs a new version`);
        throw err;
      }
      const v = view(row);
      return v.material ? { ...v, ...(await start(v.version)) } : v;
    },

    /** Starts the email workflow of a material version again (after a failed start); a running or finished one is found, not repeated. */
    async resumeEmails(version: string) {
      await material(version);
      if (!deps.temporal) throw new ConflictError('no Temporal connection: cannot start the policy email workflow');
      const r = await startPolicyPublished(deps.temporal.client, deps.temporal.taskQueue, { version });
      return { version, ...r };
    },

    /** The notice `userId` must see, or null: one statement per page view. */
    async noticeFor(userId: string): Promise<PolicyNotice | null> {
      const latest = await data.latestMaterialFor(db, userId);
      const r = versionToAcknowledge(latest ?? null, latest?.acknowledged ?? false);
      return r ? { version: r.version, title: r.title, summary: r.summary, url: r.url, publishedAt: new Date(r.published_at).toISOString() } : null;
    },

    /** Records that `userId` read `version`; twice is once. An unknown version is refused. */
    async acknowledge(userId: string, rawVersion: unknown): Promise<void> {
      const version = typeof rawVersion === 'string' ? rawVersion.trim() : '';
      if (!isVersion(version)) throw new ValidationError('invalid input: version: not a privacy policy version', [{ field: 'version', message: 'not a privacy policy version' }]);
      if (!(await data.acknowledge(db, userId, version, clock.now()))) throw new NotFoundError(`privacy policy version ${version} does not exist`);
    },

    /**
     * The workflow's paging step: queues the email of up to OWNER_PAGE
     * owners after `after` (by user id). `next` is null after the last page.
     */
    async queueOwnerEmails(version: string, after: string | null): Promise<{ owners: number; queued: number; next: string | null }> {
      if (after !== null && !z.uuid().safeParse(after).success) throw new ValidationError('invalid input: after: must be a user id (UUID)');
      const v = await material(version);
      const m = policyEmail(v);
      const limit = deps.ownerPage ?? OWNER_PAGE;
      const page = await data.queueOwnerEmailsPage(db, { keyPrefix: policyEmailPrefix(version), subject: m.subject, body: m.body, after, limit });
      return { owners: page.owners, queued: page.queued, next: page.owners < limit ? null : page.last };
    },

    /**
     * The workflow's sending step: up to SEND_BATCH queued emails of the
     * version, each claimed, sent and marked in its own transaction (a retry
     * sends only what is left). `more`: some are still unsent.
     */
    async sendOwnerEmails(version: string, heartbeat: () => void = () => undefined): Promise<{ sent: number; more: boolean }> {
      const mailer = deps.mailer ?? (deps.mail ? createMailer(deps.mail) : undefined);
      if (!mailer) throw new Error('sending policy emails needs the mail settings');
      if (!isVersion(version)) throw new NotFoundError(`privacy policy version ${version} does not exist`);
      const prefix = policyEmailPrefix(version);
      let sent = 0;
      while (sent < SEND_BATCH) {
        const went = await db.transaction(async (trx) => {
          const m = await data.claimUnsentEmail(trx, prefix);
          if (!m) return false;
          await mailer.send(m);
          await data.markEmailSent(trx, m.id);
          return true;
        });
        if (!went) return { sent, more: false };
        sent++;
        if (sent % 50 === 0) heartbeat();
      }
      return { sent, more: await data.hasUnsentEmails(db, prefix) };
    },
  };
}

export type PolicyVersionsService = ReturnType<typeof policyVersionsService>;
