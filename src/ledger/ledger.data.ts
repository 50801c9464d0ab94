import type Decimal from 'decimal.js';
import { debitAllowed, type Contra, type EntryKind } from './ledger.rules';
import { Money, toAmountString } from '../shared/money.rules';
import { ConflictError, InsufficientFundsError, NotFoundError, ValidationError } from '../errors';
import type { Db, DbOrTrx, Trx } from '../db/knex';

export interface LedgerEntryRow {
  id: number;
  account_id: string;
  kind: EntryKind;
  contra: Contra;
  amount: string;
  idempotency_key: string;
  reference_type: string;
  reference_id: string;
  actor: string;
  reason: string | null;
  reverses_entry_id: number | null;
  balance_after: string;
  created_at: Date;
}

export interface NewEntry {
  accountId: string;
  kind: EntryKind;
  contra: Contra;
  /** Signed, customer's side. */
  amount: Decimal;
  idempotencyKey: string;
  referenceType: string;
  referenceId: string;
  actor: string;
  reason?: string | null;
  reversesEntryId?: number | null;
}

/**
 * The spendable-balance rule (spendable in ledger.rules.ts) in SQL, for a
 * query that joins account_balances `b` to accounts `a`. Its one binding is
 * the prepaid overdraft allowance.
 */
export const SPENDABLE_SQL = `b.balance - b.held + CASE WHEN a.plan = 'prepaid' THEN ?::numeric ELSE a.credit_limit END`;

export interface BalanceRow {
  account_id: string;
  balance: string;
  held: string;
  plan: 'prepaid' | 'postpaid';
  credit_limit: string;
}

/**
 * Locks the balance rows of these accounts, always in id order so that two
 * transactions touching the same accounts can never deadlock. Creates a
 * missing balance row first.
 */
export async function lockBalances(trx: Trx, accountIds: string[]): Promise<Map<string, BalanceRow>> {
  const ids = [...new Set(accountIds)].sort();
  const select = async (wanted: string[]): Promise<BalanceRow[]> =>
    (
      await trx.raw(
        `SELECT b.account_id, b.balance, b.held, a.plan, a.credit_limit
           FROM account_balances b JOIN accounts a ON a.id = b.account_id
          WHERE b.account_id = ANY(?::uuid[])
          ORDER BY b.account_id
            FOR UPDATE OF b`,
        [wanted],
      )
    ).rows;
  // Balance rows nearly always exist: lock first, create only what is missing
  // (one round trip fewer on settlement's hot path than creating first).
  let rows = await select(ids);
  if (rows.length < ids.length) {
    await trx.raw(
      `INSERT INTO account_balances (account_id) SELECT id FROM accounts WHERE id = ANY(?::uuid[]) ON CONFLICT DO NOTHING`,
      [ids],
    );
    // Locks taken above are kept; re-locking them is a no-op, so id order still holds for the new ones.
    rows = await select(ids);
  }
  const found = new Map(rows.map((r) => [r.account_id, r]));
  for (const id of ids) if (!found.has(id)) throw new NotFoundError(`account ${id} does not exist`);
  return found;
}

export interface PostResult {
  entry: LedgerEntryRow;
  /** False when the idempotency key had been applied before: nothing changed. */
  applied: boolean;
}

/**
 * Posts entries in one transaction: balances locked in id order, each
 * idempotency key applied at most once (a repeat returns the earlier entry,
 * provided it is the same movement), balance updated with the entry.
 */
export async function postEntries(
  trx: Trx,
  entries: NewEntry[],
  opts: {
    overdraftAllowance: Decimal;
    /** Balance rows this transaction has already locked with lockBalances. */
    locked?: Map<string, BalanceRow>;
    /** The money has already gone (a refund or chargeback the payment provider made): the debit is recorded whatever the balance. */
    unconditional?: boolean;
  },
): Promise<PostResult[]> {
  const accountIds = entries.map((e) => e.accountId);
  const balances = opts.locked && accountIds.every((id) => opts.locked!.has(id)) ? opts.locked : await lockBalances(trx, accountIds);
  const results: PostResult[] = [];
  for (const e of entries) {
    const b = balances.get(e.accountId)!;
    const state = {
      plan: b.plan,
      balance: new Money(b.balance),
      held: new Money(b.held),
      creditLimit: new Money(b.credit_limit),
      overdraftAllowance: opts.overdraftAllowance,
    };
    const balanceAfter = state.balance.plus(e.amount);
    // The common case in one round trip: a new key is inserted; a key applied
    // before inserts nothing, and the earlier entry is returned below. When the
    // funds check fails, an earlier entry under the key still answers the repeat:
    // only a new movement is refused for lack of funds.
    let inserted: LedgerEntryRow | undefined;
    if (opts.unconditional || debitAllowed(e.kind, e.amount, state)) {
      [inserted] = await trx<LedgerEntryRow>('ledger_entries')
        .insert({
          account_id: e.accountId,
          kind: e.kind,
          contra: e.contra,
          amount: toAmountString(e.amount),
          idempotency_key: e.idempotencyKey,
          reference_type: e.referenceType,
          reference_id: e.referenceId,
          actor: e.actor,
          reason: e.reason ?? null,
          reverses_entry_id: e.reversesEntryId ?? null,
          balance_after: toAmountString(balanceAfter),
        })
        .onConflict('idempotency_key')
        .ignore()
        .returning('*');
    }
    if (!inserted) {
      const existing = await trx<LedgerEntryRow>('ledger_entries').where({ idempotency_key: e.idempotencyKey }).first();
      if (!existing) throw new InsufficientFundsError(`account ${e.accountId} cannot cover ${toAmountString(e.amount.neg())}`);
      if (existing.account_id !== e.accountId || !new Money(existing.amount).eq(e.amount) || existing.kind !== e.kind) {
        throw new ConflictError(`idempotency key ${e.idempotencyKey} was already used for a different entry`);
      }
      results.push({ entry: existing, applied: false });
      continue;
    }
    await trx('account_balances')
      .where({ account_id: e.accountId })
      .update({ balance: toAmountString(balanceAfter), updated_at: trx.fn.now() });
    b.balance = toAmountString(balanceAfter);
    results.push({ entry: inserted, applied: true });
  }
  return results;
}

export async function postEntry(db: Db, entry: NewEntry, opts: { overdraftAllowance: Decimal }): Promise<PostResult> {
  return db.transaction(async (trx) => (await postEntries(trx, [entry], opts))[0]!);
}

/** A reversal posts the opposite of an entry against the same contra; an entry is reversed at most once. */
export async function reverseEntry(
  db: Db,
  input: { entryId: number; reason: string; actor: string; idempotencyKey: string },
): Promise<PostResult> {
  return db.transaction(async (trx) => {
    const original = await trx<LedgerEntryRow>('ledger_entries').where({ id: input.entryId }).first();
    if (!original) throw new NotFoundError(`ledger entry ${input.entryId} does not exist`);
    if (original.kind === 'reversal') throw new ValidationError('a reversal cannot be reversed; post a new entry instead');
    const already = await trx<LedgerEntryRow>('ledger_entries').where({ reverses_entry_id: original.id }).first();
    if (already) {
      if (already.idempotency_key === input.idempotencyKey) return { entry: already, applied: false };
      throw new ConflictError(`ledger entry ${original.id} was already reversed by entry ${already.id}`);
    }
    const [r] = await postEntries(
      trx,
      [
        {
          accountId: original.account_id,
          kind: 'reversal',
          contra: original.contra,
          amount: new Money(original.amount).neg(),
          idempotencyKey: input.idempotencyKey,
          referenceType: 'ledger_entry',
          referenceId: String(original.id),
          actor: input.actor,
          reason: input.reason,
          reversesEntryId: original.id,
        },
      ],
      // A reversal corrects a mistake: it may take the account below its floor.
      { overdraftAllowance: new Money('1e15') },
    );
    return r!;
  });
}

/** Where a payment's refunds and disputes are posted: reference_id names the payment, the idempotency key the event. */
export const PAYMENT_REVERSAL_REFERENCES = ['payment_refund', 'payment_dispute'] as const;

/** The refund and dispute entries posted against one payment (reference `${provider}:${paymentId}`), oldest first. */
export async function paymentReversalEntries(db: DbOrTrx, provider: string, paymentId: string): Promise<LedgerEntryRow[]> {
  return db<LedgerEntryRow>('ledger_entries')
    .whereIn('reference_type', [...PAYMENT_REVERSAL_REFERENCES])
    .where({ reference_id: `${provider}:${paymentId}` })
    .orderBy('id');
}

export async function balanceOf(db: DbOrTrx, accountId: string) {
  return db('account_balances').where({ account_id: accountId }).first<{ balance: string; held: string } | undefined>();
}

export async function entriesOf(db: DbOrTrx, accountId: string, opts: { limit: number; beforeId?: number }) {
  const q = db<LedgerEntryRow>('ledger_entries').where({ account_id: accountId }).orderBy('id', 'desc').limit(opts.limit);
  if (opts.beforeId) q.where('id', '<', opts.beforeId);
  return q;
}

/** The account fields the ledger's staff operations need. */
export async function ledgerAccount(db: DbOrTrx, accountId: string) {
  return db('accounts').where({ id: accountId }).first<{ id: string; currency: string; plan: 'prepaid' | 'postpaid'; credit_limit: string } | undefined>('id', 'currency', 'plan', 'credit_limit');
}

/** The account fields a top-up checks. */
export async function topUpAccount(db: DbOrTrx, accountId: string) {
  return db('accounts').where({ id: accountId }).first<{ id: string; currency: string; status: string } | undefined>('id', 'currency', 'status');
}

/** Usage recorded but not settled yet: how many events, what they cost. */
export async function unsettledUsage(db: DbOrTrx, accountId: string) {
  return db('usage_events')
    .where({ account_id: accountId })
    .whereNull('settled_at')
    .first<{ events: number; cost: string } | undefined>(db.raw('count(*)::int AS events'), db.raw('coalesce(sum(cost), 0)::text AS cost'));
}

export interface MeteringQuarantineRow {
  id: number;
  request_id: string;
  occurred_at: string;
  account_id: string | null;
  gateway_instance: string | null;
  record: unknown;
  error_code: string;
  error_message: string;
  quarantined_at: Date;
  resolved_at: Date | null;
  resolved_by: string | null;
  resolution: string | null;
}

/** Metering records PostgreSQL refused (src/metering/usageEvents.data.ts sets them aside), newest first. */
export async function meteringQuarantinePage(db: DbOrTrx, page: { limit: number; before?: number; unresolvedOnly: boolean }): Promise<MeteringQuarantineRow[]> {
  const q = db('metering_quarantine').orderBy('id', 'desc').limit(page.limit);
  if (page.unresolvedOnly) q.whereNull('resolved_at');
  if (page.before) q.where('id', '<', page.before);
  return q;
}
