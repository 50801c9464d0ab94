import { z } from 'zod';
import type { Clock } from '../clock';
import type { Db } from '../db/knex';
import { ConflictError, NotFoundError } from '../errors';
import { validate } from '../shared/validate';
import { accountStatus, openSuspension, reinstateAccount, suspendAccount, suspensionsOf, type SuspensionRow } from './suspension.data';
import { hasControl } from '../shared/text';

/**
 * Suspension by billing staff (docs/collections.md#suspension): suspend an
 * account by hand, reinstate it, and show its suspension and their history.
 * A suspension staff make has no invoice and is lifted by staff only (a
 * payment lifts only the dunning workflow's suspension for an invoice). Every
 * change records who (`staff:<token id>` or `cli:<user>`), why and when in
 * account_suspensions, and its account event (email and webhook) in the same
 * transaction (suspension.data.ts). The gateway refuses the account's model
 * calls within its key cache's TTL of the change.
 */

/** Why: 3-500 characters of one line of text (no control characters, so it prints safely in a terminal). */
export const suspensionReason = z
  .string({ error: 'reason must say why' })
  .trim()
  .min(3, 'reason must say why (at least 3 characters)')
  .max(500, 'reason must be at most 500 characters')
  .refine((v) => !hasControl(v), 'reason must be one line of text without control characters');

/** The admin API's body of POST /billing/accounts/:id/suspend and /reinstate. */
export const suspensionBody = z.strictObject({ reason: suspensionReason });

const accountId = z.uuid({ error: 'id must be an account id (UUID)' });
const changeInput = z.strictObject({ accountId, reason: suspensionReason });

export interface SuspensionDeps {
  db: Db;
  clock: Clock;
}

/** The suspension in force, as staff see it. */
export interface CurrentSuspension {
  reason: string;
  /** The unpaid invoice the dunning workflow suspended for; null: suspended by staff. */
  invoiceId: string | null;
  suspendedBy: string;
  suspendedAt: string;
}

const currentView = (r: SuspensionRow): CurrentSuspension => ({
  reason: r.reason,
  invoiceId: r.invoice_id,
  suspendedBy: r.suspended_by,
  suspendedAt: r.suspended_at.toISOString(),
});

const historyView = (r: SuspensionRow) => ({
  id: r.id,
  ...currentView(r),
  reinstatedBy: r.reinstated_by,
  reinstatedAt: r.reinstated_at ? r.reinstated_at.toISOString() : null,
  reinstateReason: r.reinstate_reason,
});

export type SuspensionRecord = ReturnType<typeof historyView>;

export function suspensionService({ db }: SuspensionDeps) {
  /** Validates, then checks the account exists (404) and is not closed (409). */
  const checked = async (raw: { accountId: unknown; reason: unknown }) => {
    const input = validate(changeInput, { accountId: raw.accountId, reason: raw.reason });
    const status = await accountStatus(db, input.accountId);
    if (!status) throw new NotFoundError(`account ${input.accountId} does not exist`);
    if (status === 'closed') throw new ConflictError(`account ${input.accountId} is closed`);
    return input;
  };

  return {
    /**
     * Suspends the account by a staff decision. Already suspended (by staff or for
     * an invoice): nothing changes, `suspended: false` with the suspension in force.
     */
    async suspend(raw: { accountId: unknown; reason: unknown; actor: string }): Promise<{ suspended: boolean; suspension: SuspensionRecord }> {
      const input = await checked(raw);
      return db.transaction(async (trx) => {
        const r = await suspendAccount(trx, { accountId: input.accountId, invoiceId: null, reason: input.reason, actor: raw.actor });
        // Closed between the check and the lock.
        if (!r.suspension) throw new ConflictError(`account ${input.accountId} is closed`);
        return { suspended: r.suspended, suspension: historyView(r.suspension) };
      });
    },

    /**
     * Ends the account's suspension (by staff, or for an invoice that is still
     * unpaid: a staff decision) and makes it active again. Not suspended:
     * nothing changes, `reinstated: false`.
     */
    async reinstate(raw: { accountId: unknown; reason: unknown; actor: string }): Promise<{ reinstated: boolean; suspension: SuspensionRecord | null }> {
      const input = await checked(raw);
      return db.transaction(async (trx) => {
        const r = await reinstateAccount(trx, { accountId: input.accountId, actor: raw.actor, reason: input.reason });
        return { reinstated: r.reinstated, suspension: r.suspension ? historyView(r.suspension) : null };
      });
    },

    /** Whether the account is suspended (what the gateway enforces), the suspension in force, and the last 50, newest first. */
    async status(rawAccountId: unknown): Promise<{ suspended: boolean; current: CurrentSuspension | null; history: SuspensionRecord[] }> {
      const id = validate(z.strictObject({ accountId }), { accountId: rawAccountId }).accountId;
      const status = await accountStatus(db, id);
      if (!status) throw new NotFoundError(`account ${id} does not exist`);
      const [open, rows] = await Promise.all([openSuspension(db, id), suspensionsOf(db, id)]);
      return { suspended: status === 'suspended', current: open ? currentView(open) : null, history: rows.map(historyView) };
    },
  };
}

export type SuspensionService = ReturnType<typeof suspensionService>;
