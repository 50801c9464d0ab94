import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import { z } from 'zod';
import type { Clock } from '../clock';
import type { Config } from '../config';
import type { Db } from '../db/knex';
import { ConflictError, DependencyUnavailableError, NotFoundError, ValidationError } from '../errors';
import { pageLimit } from '../staff/schemas';
import { validate } from '../shared/validate';
import { workflowIds } from '../temporal/conventions';
import type { MetadataExpiryInput, MetadataExpiryResult, RetentionCategoryCounts } from '../../workflows/messages';
import * as data from './retention.data';
import { runCategory } from './expiry.service';
import { runOrder, type Policy } from './retention.rules';

/**
 * Retention for compliance staff and admins: run expiry now, read runs,
 * read and change policies (admins; audited), place and release legal holds
 * (audited by who, when and why on the hold itself). For the metadataExpiry
 * workflow's activities: open a run, expire one category and record it, close
 * the run.
 */
export const setPolicyInput = z.strictObject({
  category: z.string().min(1),
  period: z.coerce.number().int().min(1, 'period must be at least 1').max(100_000),
  reason: z.string().trim().min(5, 'reason: say why the period changes').max(500),
});
export const addHoldInput = z.strictObject({ accountId: z.uuid({ error: 'accountId must be an account id (UUID)' }), reason: z.string().trim().min(5, 'reason: say why (case, authority request)').max(500) });
export const releaseHoldInput = z.strictObject({ reason: z.string().trim().min(5, 'reason: say why the hold ends').max(500) });
export const listRunsInput = z.strictObject({ limit: pageLimit(20), before: z.uuid({ error: 'before must be a run id' }).optional() });
export const listHoldsInput = z.strictObject({
  limit: pageLimit(),
  before: z.uuid({ error: 'before must be a hold id' }).optional(),
  active: z.enum(['true', 'false']).optional(),
});

export function retentionService(deps: { db: Db; clock: Clock; config: Pick<Config, 'retention'>; client?: Client; taskQueue?: string }) {
  const { db, clock, config } = deps;
  const runView = async (r: any) => ({
    id: r.id,
    workflowId: r.workflow_id,
    trigger: r.trigger,
    requestedBy: r.requested_by,
    status: r.status,
    startedAt: new Date(r.started_at).toISOString(),
    finishedAt: r.finished_at ? new Date(r.finished_at).toISOString() : null,
    categories: (await data.runCategories(db, r.id)).map((c) => ({
      category: c.category,
      cutoff: new Date(c.cutoff).toISOString(),
      expiredRows: Number(c.expired_rows),
      expiredPartitions: c.expired_partitions,
      keptHold: Number(c.kept_hold),
      keptUnbilled: Number(c.kept_unbilled),
      keptOther: Number(c.kept_other),
      note: c.note,
      seconds: (new Date(c.finished_at).getTime() - new Date(c.started_at).getTime()) / 1000,
    })),
  });

  return {
    /** Starts a run now (or returns the one started this minute), optionally waiting for it. */
    async run(actor: string, opts: { wait?: boolean } = {}) {
      if (!deps.client || !deps.taskQueue) throw new DependencyUnavailableError('expiry runs need Temporal');
      const workflowId = workflowIds.metadataExpiryOnDemand(clock.now());
      const input: MetadataExpiryInput = { requestedBy: actor, batchSize: config.retention.batchSize };
      let runId: string;
      try {
        runId = (await deps.client.workflow.start('metadataExpiry', { taskQueue: deps.taskQueue, workflowId, args: [input] })).firstExecutionRunId;
      } catch (err) {
        if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
        runId = (await deps.client.workflow.getHandle(workflowId).describe()).runId;
      }
      if (!opts.wait) return { workflowId, runId };
      await (deps.client.workflow.getHandle(workflowId, runId).result() as Promise<MetadataExpiryResult>);
      return this.getRun(runId);
    },

    /** Newest first; `before` is the last run id of the previous page. */
    async listRuns(raw: unknown = {}) {
      const page = validate(listRunsInput, raw ?? {});
      // A cursor that names no run would compare with NULL and end the listing early, as if there were no more.
      if (page.before && !(await data.runExists(db, page.before))) {
        throw new ValidationError('before: no such run', [{ field: 'before', message: 'must be the id of the last run of the previous page' }]);
      }
      const rows = await data.listRuns(db, page);
      return Promise.all(rows.map(runView));
    },

    async getRun(id: string) {
      if (!z.uuid().safeParse(id).success) throw new NotFoundError(`expiry run ${id} does not exist`);
      const r = await data.findRun(db, id);
      if (!r) throw new NotFoundError(`expiry run ${id} does not exist`);
      return runView(r);
    },

    async policies() {
      return (await data.listPolicies(db)).map((p) => ({
        category: p.category,
        period: p.period,
        unit: p.unit,
        action: p.action,
        legalBasis: p.legal_basis,
        updatedAt: new Date(p.updated_at).toISOString(),
        updatedBy: p.updated_by,
      }));
    },

    async setPolicy(raw: unknown, actor: string) {
      const input = validate(setPolicyInput, raw);
      return db.transaction(async (trx) => {
        const p = await data.lockPolicy(trx, input.category);
        if (!p) throw new NotFoundError(`no retention category ${input.category}`);
        await data.changePeriod(trx, p, input.period, actor, input.reason);
        return { category: p.category, period: input.period, unit: p.unit, previous: p.period };
      });
    },

    async addHold(raw: unknown, actor: string) {
      const input = validate(addHoldInput, raw);
      if (!(await data.accountExists(db, input.accountId))) throw new NotFoundError(`account ${input.accountId} does not exist`);
      return holdView(await data.insertHold(db, { accountId: input.accountId, reason: input.reason, actor }));
    },

    async releaseHold(id: string, raw: unknown, actor: string) {
      const { reason } = validate(releaseHoldInput, raw);
      if (!z.uuid().safeParse(id).success) throw new NotFoundError(`legal hold ${id} does not exist`);
      const h = await data.findHold(db, id);
      if (!h) throw new NotFoundError(`legal hold ${id} does not exist`);
      if (h.released_at) throw new ConflictError(`legal hold ${id} was released at ${new Date(h.released_at).toISOString()}`);
      return holdView(await data.releaseHold(db, id, actor, reason));
    },

    /** Newest first; `before` is the last hold id of the previous page. */
    async holds(raw: unknown = {}) {
      const page = validate(listHoldsInput, raw ?? {});
      if (page.before && !(await data.holdExists(db, page.before))) {
        throw new ValidationError('before: no such hold', [{ field: 'before', message: 'must be the id of the last hold of the previous page' }]);
      }
      return (await data.listHolds(db, page)).map(holdView);
    },

    /** Records a run (once per id) and returns its categories in the order they run. */
    async openRun(input: { runId: string; workflowId: string; requestedBy: string }): Promise<string[]> {
      await data.insertRun(db, { id: input.runId, workflowId: input.workflowId, trigger: input.requestedBy === 'system:schedule' ? 'schedule' : 'staff', requestedBy: input.requestedBy });
      return runOrder(await data.policyCategories(db));
    },

    policy: (category: string): Promise<Policy | undefined> => data.findPolicy(db, category),

    /** Expires one category as of `opts.now` and records what it did under the run. */
    async expireCategory(runId: string, policy: Policy, opts: { now: Date; batchSize: number; pauseFactor?: number; onProgress?: () => void }): Promise<RetentionCategoryCounts> {
      const o = await runCategory({ db, ...opts }, policy);
      await data.saveRunCategory(db, runId, o, opts.now, clock.now());
      return { category: o.category, expiredRows: o.expiredRows, expiredPartitions: o.expiredPartitions, keptHold: o.keptHold, keptUnbilled: o.keptUnbilled, keptOther: o.keptOther };
    },

    closeRun: (runId: string): Promise<void> => data.finishRun(db, runId),
  };
}

function holdView(h: any) {
  return {
    id: h.id,
    accountId: h.account_id,
    reason: h.reason,
    createdBy: h.created_by,
    createdAt: new Date(h.created_at).toISOString(),
    releasedAt: h.released_at ? new Date(h.released_at).toISOString() : null,
    releasedBy: h.released_by,
    releaseReason: h.release_reason,
  };
}

export type RetentionService = ReturnType<typeof retentionService>;
