import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import { z } from 'zod';
import type { Clock } from '../clock';
import type { Config } from '../config';
import type { Db } from '../db/knex';
import { ConflictError, DependencyUnavailableError, NotFoundError, ValidationError } from '../errors';
import { pageLimit } from '../staff/schemas';
import { validate } from '../shared/validate';
import type { MetadataExpiryInput, MetadataExpiryResult } from '../../workflows/messages';

/**
 * Retention for compliance staff and admins: run expiry now, read runs,
 * read and change policies (admins; audited), place and release legal holds
 * (audited by who, when and why on the hold itself).
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

export function retentionService(deps: { db: Db; clock: Clock; config: Config; client?: Client; taskQueue?: string }) {
  const { db, clock, config } = deps;
  const runView = async (r: any) => ({
    id: r.id,
    workflowId: r.workflow_id,
    trigger: r.trigger,
    requestedBy: r.requested_by,
    status: r.status,
    startedAt: new Date(r.started_at).toISOString(),
    finishedAt: r.finished_at ? new Date(r.finished_at).toISOString() : null,
    categories: (await db('retention_run_categories').where({ run_id: r.id }).orderBy('started_at')).map((c) => ({
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
      const workflowId = `metadata-expiry:manual-${clock.now().toISOString().slice(0, 16)}`;
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
      const q = db('retention_runs').orderBy([{ column: 'started_at', order: 'desc' }, { column: 'id', order: 'desc' }]).limit(page.limit);
      if (page.before) {
        // A cursor that names no run would compare with NULL and end the listing early, as if there were no more.
        const cursor = await db('retention_runs').where({ id: page.before }).first('id');
        if (!cursor) throw new ValidationError('before: no such run', [{ field: 'before', message: 'must be the id of the last run of the previous page' }]);
        q.whereRaw('(started_at, id) < (SELECT started_at, id FROM retention_runs WHERE id = ?)', [cursor.id]);
      }
      const rows = await q;
      return Promise.all(rows.map(runView));
    },

    async getRun(id: string) {
      if (!z.uuid().safeParse(id).success) throw new NotFoundError(`expiry run ${id} does not exist`);
      const r = await db('retention_runs').where({ id }).first();
      if (!r) throw new NotFoundError(`expiry run ${id} does not exist`);
      return runView(r);
    },

    async policies() {
      return (await db('retention_policies').orderBy('category')).map((p) => ({
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
        const p = await trx('retention_policies').where({ category: input.category }).forUpdate().first();
        if (!p) throw new NotFoundError(`no retention category ${input.category}`);
        await trx('retention_policy_changes').insert({ category: p.category, old_period: p.period, new_period: input.period, changed_by: actor, reason: input.reason });
        await trx('retention_policies').where({ category: p.category }).update({ period: input.period, updated_at: trx.fn.now(), updated_by: actor });
        return { category: p.category, period: input.period, unit: p.unit, previous: p.period };
      });
    },

    async addHold(raw: unknown, actor: string) {
      const input = validate(addHoldInput, raw);
      const account = await db('accounts').where({ id: input.accountId }).first('id');
      if (!account) throw new NotFoundError(`account ${input.accountId} does not exist`);
      const [h] = await db('legal_holds').insert({ account_id: input.accountId, reason: input.reason, created_by: actor }).returning('*');
      return holdView(h);
    },

    async releaseHold(id: string, raw: unknown, actor: string) {
      const { reason } = validate(releaseHoldInput, raw);
      if (!z.uuid().safeParse(id).success) throw new NotFoundError(`legal hold ${id} does not exist`);
      const h = await db('legal_holds').where({ id }).first();
      if (!h) throw new NotFoundError(`legal hold ${id} does not exist`);
      if (h.released_at) throw new ConflictError(`legal hold ${id} was released at ${new Date(h.released_at).toISOString()}`);
      const [r] = await db('legal_holds').where({ id }).update({ released_at: db.fn.now(), released_by: actor, release_reason: reason }).returning('*');
      return holdView(r);
    },

    /** Newest first; `before` is the last hold id of the previous page. */
    async holds(raw: unknown = {}) {
      const page = validate(listHoldsInput, raw ?? {});
      const q = db('legal_holds').orderBy([{ column: 'created_at', order: 'desc' }, { column: 'id', order: 'desc' }]).limit(page.limit);
      if (page.active === 'true') q.whereNull('released_at');
      if (page.before) {
        const cursor = await db('legal_holds').where({ id: page.before }).first('id');
        if (!cursor) throw new ValidationError('before: no such hold', [{ field: 'before', message: 'must be the id of the last hold of the previous page' }]);
        q.whereRaw('(created_at, id) < (SELECT created_at, id FROM legal_holds WHERE id = ?)', [cursor.id]);
      }
      return (await q).map(holdView);
    },
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
