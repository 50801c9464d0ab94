import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Clock } from '../src/clock';
import type { Config } from '../src/config';
import type { Db } from '../src/db/knex';
import { runCategory, type Policy } from '../src/retention/retention.data';
import type { RetentionCategoryCounts } from '../workflows/messages';

/** The order categories run in: minimisation before row expiry, usage first (the largest), billing records last. */
const ORDER = ['usage_events.network', 'usage_events', 'usage_events.erased_subjects', 'security_events', 'login_records', 'notification_outbox', 'dsr_packages', 'dsr_requests', 'closed_accounts', 'invoices', 'payments', 'ledger_entries'];

export function retentionActivities({ db, clock, retention }: { db: Db; clock: Clock; retention: Config['retention'] }) {
  return {
    async retentionOpenRun(input: { runId: string; workflowId: string; requestedBy: string }): Promise<string[]> {
      await db('retention_runs')
        .insert({ id: input.runId, workflow_id: input.workflowId, trigger: input.requestedBy === 'system:schedule' ? 'schedule' : 'staff', requested_by: input.requestedBy })
        .onConflict('id')
        .ignore();
      const categories: string[] = await db('retention_policies').pluck('category');
      const rank = (c: string) => (ORDER.includes(c) ? ORDER.indexOf(c) : ORDER.length);
      return categories.sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
    },

    async retentionRunCategory(input: { runId: string; category: string; batchSize: number }): Promise<RetentionCategoryCounts> {
      const policy: Policy | undefined = await db('retention_policies').where({ category: input.category }).first();
      if (!policy) throw ApplicationFailure.nonRetryable(`no retention policy ${input.category}`, 'UnknownCategory');
      const startedAt = clock.now();
      const beat = setInterval(() => Context.current().heartbeat(), 10_000);
      try {
        const o = await runCategory({ db, now: startedAt, batchSize: input.batchSize, pauseFactor: retention.pauseFactor, onProgress: () => Context.current().heartbeat() }, policy);
        await db('retention_run_categories')
          .insert({
            run_id: input.runId,
            category: o.category,
            cutoff: o.cutoff,
            expired_rows: o.expiredRows,
            expired_partitions: o.expiredPartitions,
            kept_hold: o.keptHold,
            kept_unbilled: o.keptUnbilled,
            kept_other: o.keptOther,
            note: o.note,
            started_at: startedAt,
            finished_at: clock.now(),
          })
          .onConflict(['run_id', 'category'])
          .merge();
        return { category: o.category, expiredRows: o.expiredRows, expiredPartitions: o.expiredPartitions, keptHold: o.keptHold, keptUnbilled: o.keptUnbilled, keptOther: o.keptOther };
      } finally {
        clearInterval(beat);
      }
    },

    async retentionCloseRun(input: { runId: string }): Promise<void> {
      await db('retention_runs').where({ id: input.runId }).update({ status: 'finished', finished_at: db.raw('COALESCE(finished_at, now())') });
    },
  };
}
