import type { Knex } from 'knex';
import { checkIn } from './ddl';

const STATUSES = ['received', 'verifying', 'in_progress', 'awaiting_approval', 'completed', 'partially_completed', 'refused', 'withdrawn'];

/**
 * Data-subject requests at the trust boundary (issue 17, items 2 and 3).
 *
 * - status `failed`: a fulfilment that cannot succeed on the data it was given
 *   (a correction the schema or a constraint refuses) ends the workflow
 *   instead of retrying forever; failure_reason holds a code (never a value)
 *   for compliance staff, who answer the subject another way.
 * - An index for the public intake's "one open request per email and type"
 *   check, which runs on every submission.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE dsr_requests DROP CONSTRAINT dsr_requests_status_check`);
  await knex.raw(checkIn('dsr_requests', 'status', [...STATUSES, 'failed']));
  await knex.raw(`ALTER TABLE dsr_requests ADD COLUMN failure_reason text NULL`);
  await knex.raw(`CREATE INDEX dsr_requests_open_by_subject ON dsr_requests (subject_email_hash, type) WHERE closed_at IS NULL`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`DROP INDEX dsr_requests_open_by_subject`);
  await knex.raw(`ALTER TABLE dsr_requests DROP COLUMN failure_reason`);
  await knex.raw(`UPDATE dsr_requests SET status = 'refused' WHERE status = 'failed'`);
  await knex.raw(`ALTER TABLE dsr_requests DROP CONSTRAINT dsr_requests_status_check`);
  await knex.raw(checkIn('dsr_requests', 'status', STATUSES));
}
