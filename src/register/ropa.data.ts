import type { Db } from '../db/knex';
import { listActivities, listRecipients, type ActivityRow, type RecipientRow } from './register.data';

/**
 * What the record of processing activities is made of: the register's
 * activities and recipients and the retention policies, read in one
 * read-only snapshot so the record never mixes two states of the register.
 */

export interface PolicyRow {
  category: string;
  period: number;
  unit: string;
  action: string;
}

export async function readRopaFacts(db: Db): Promise<{ activities: ActivityRow[]; recipients: RecipientRow[]; policies: PolicyRow[] }> {
  const trx = await db.transaction({ isolationLevel: 'repeatable read', readOnly: true });
  try {
    const activities = await listActivities(trx);
    const recipients = await listRecipients(trx);
    const policies: PolicyRow[] = await trx('retention_policies').select('category', 'period', 'unit', 'action').orderBy('category');
    await trx.commit();
    return { activities, recipients, policies };
  } catch (err) {
    await trx.rollback();
    throw err;
  }
}
