import type Decimal from 'decimal.js';
import type { Db } from '../../db/knex';
import type { Discrepancy, ReconcileWindow } from '../reconciliation.rules';

/** What every check is given: the report it runs for, its window and the settings of the safe repairs. */
export interface CheckContext {
  db: Db;
  reportId: string;
  window: ReconcileWindow;
  now: Date;
  settlementLagS: number;
  paymentGraceS: number;
  overdraftAllowance: Decimal;
  /** Called between steps of a long check (activity heartbeats). */
  onProgress?: () => void;
}

/** A check: the discrepancies it found in the window (after making its safe repairs). */
export type CheckFunction = (ctx: CheckContext) => Promise<Discrepancy[]>;
