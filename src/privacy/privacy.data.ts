import { createHash } from 'node:crypto';
import { strToU8, zipSync } from 'fflate';
import { RETAINED_BY_LAW, CORRECTABLE_FIELDS, type DsrType } from './rights.rules';
import type { Db, DbOrTrx } from '../db/knex';

/**
 * Data-subject requests: what is held about a subject, and the effects of
 * each right on the data. The subject is found by email: the users with that
 * email (optionally within one account), and the accounts whose billing
 * contact it is.
 */

export const emailHash = (email: string) => createHash('sha256').update(email.trim().toLowerCase()).digest('hex');

export async function appendDsrEvent(db: DbOrTrx, requestId: string, actor: string, action: string, detail: Record<string, unknown>, idempotencyKey: string): Promise<void> {
  await db('dsr_events').insert({ request_id: requestId, actor, action, detail: JSON.stringify(detail), idempotency_key: idempotencyKey }).onConflict(['request_id', 'idempotency_key']).ignore();
}

export async function enqueueNotification(db: DbOrTrx, n: { key: string; recipient: string; subject: string; body: string }): Promise<void> {
  await db('notification_outbox').insert({ idempotency_key: n.key, recipient: n.recipient, subject: n.subject, body: n.body }).onConflict('idempotency_key').ignore();
}

export interface Subject {
  userIds: string[];
  /** Accounts the subject belongs to as a user. */
  memberAccountIds: string[];
  /** Accounts whose billing contact the subject is (their invoices and payments concern them). */
  billingAccountIds: string[];
}

export async function findSubject(db: DbOrTrx, email: string, accountId: string | null): Promise<Subject> {
  const users = db('users').whereRaw('lower(email) = lower(?)', [email]).whereNull('erased_at');
  if (accountId) users.where({ account_id: accountId });
  const rows = await users.select('id', 'account_id');
  const billing = db('accounts').whereRaw('lower(billing_email) = lower(?)', [email]);
  if (accountId) billing.where({ id: accountId });
  const billingAccountIds: string[] = await billing.pluck('id');
  return { userIds: rows.map((r) => r.id), memberAccountIds: [...new Set(rows.map((r) => r.account_id as string))], billingAccountIds };
}

const iso = (v: unknown) => (v instanceof Date ? v.toISOString() : v);
const clean = (rows: Record<string, unknown>[]) => rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, iso(v)])));

/**
 * Everything held about the subject, by category (the access package).
 * `portable` limits it to what portability covers: what they provided and
 * their usage metadata.
 */
export async function collectSubjectData(db: Db, subject: Subject, emailHashValue: string, opts: { portable: boolean }): Promise<Record<string, Record<string, unknown>[]>> {
  const { userIds } = subject;
  const accountIds = [...new Set([...subject.memberAccountIds, ...subject.billingAccountIds])];
  const out: Record<string, Record<string, unknown>[]> = {};
  out.users = clean(await db('users').whereIn('id', userIds).select('id', 'account_id', 'name', 'email', 'phone', 'job_title', 'processing_restricted', 'objected', 'marketing_consent', 'created_at', 'updated_at'));
  out.accounts = clean(
    await db('accounts').whereIn('id', accountIds).select('id', 'name', 'country', 'vat_id', 'billing_email', 'plan', 'status', 'currency', 'created_at'),
  );
  out.api_keys = clean(await db('api_keys').whereIn('user_id', userIds).select('id', 'account_id', 'user_id', 'name', 'prefix', 'created_at', 'revoked_at'));
  out.usage_metadata = clean(
    await db('usage_events')
      .whereIn('user_id', userIds)
      .orderBy('occurred_at')
      .select('request_id', 'occurred_at', 'endpoint', 'model', 'provider', 'status_code', 'stream', 'input_tokens', 'cache_read_tokens', 'output_tokens', 'cost', 'latency_ms', 'source_ip', 'user_agent'),
  );
  if (opts.portable) return out;
  out.login_records = clean(await db('login_records').whereIn('user_id', userIds).select('at', 'source_ip', 'user_agent', 'success'));
  out.consents = clean(await db('consent_records').whereIn('user_id', userIds).orderBy('id').select('user_id', 'purpose', 'granted', 'source', 'at'));
  const keyIds = (out.api_keys ?? []).map((k) => k.id as string);
  out.security_events = clean(
    await db('security_events')
      .where((w) => w.whereIn('api_key_id', keyIds))
      .select('occurred_at', 'last_occurred_at', 'count', 'kind', 'reason', 'request_id', 'source_ip', 'user_agent'),
  );
  // Billing records concern the subject where they are the account's billing contact.
  out.payments = clean(await db('payments').whereIn('account_id', subject.billingAccountIds).select('provider', 'provider_payment_id', 'account_id', 'amount', 'currency', 'status', 'received_at'));
  out.ledger_entries = clean(await db('ledger_entries').whereIn('account_id', subject.billingAccountIds).orderBy('id').select('id', 'account_id', 'kind', 'amount', 'reference_type', 'reference_id', 'created_at'));
  out.invoices = clean(await db('invoices').whereIn('account_id', subject.billingAccountIds).whereNotNull('number').select('number', 'kind', 'account_id', 'period', 'status', 'currency', 'total', 'amount_due', 'issued_at'));
  out.rights_requests = clean(await db('dsr_requests').where({ subject_email_hash: emailHashValue }).orderBy('received_at').select('id', 'type', 'status', 'received_at', 'due_date', 'closed_at'));
  return out;
}

/** The upstream providers the subject's traffic was routed to (from usage metadata). */
export async function providersUsed(db: Db, subject: Subject): Promise<string[]> {
  if (!subject.userIds.length && !subject.memberAccountIds.length) return [];
  return db('usage_events')
    .where((w) => w.whereIn('user_id', subject.userIds).orWhereIn('account_id', subject.memberAccountIds))
    .whereNotNull('provider')
    .distinct('provider')
    .orderBy('provider')
    .pluck('provider');
}

/**
 * One CSV cell. A spreadsheet runs a cell that starts with = + - @ (or a tab or
 * carriage return before one) as a formula, and the subject's own values (a
 * name, a user agent) can be anything: such cells get a leading single quote
 * (OWASP "CSV injection"). Plain numbers such as -1.50 stay numbers: they cannot
 * be a formula, and amounts must stay readable as amounts.
 */
export function csvCell(v: unknown): string {
  let s = v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
  if (/^[=+\-@\t\r]/.test(s) && !/^-\d+(\.\d+)?$/.test(s)) s = `'${s}`;
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function toCsv(rows: Record<string, unknown>[]): string {
  if (!rows.length) return '';
  const cols = Object.keys(rows[0]!);
  return [cols.map(csvCell).join(','), ...rows.map((r) => cols.map((c) => csvCell(r[c])).join(','))].join('\n') + '\n';
}

/** One archive: data.json with everything, plus one CSV per table. */
export function packageArchive(document: Record<string, unknown>, tables: Record<string, Record<string, unknown>[]>): Uint8Array {
  const files: Record<string, Uint8Array> = { 'data.json': strToU8(JSON.stringify(document, null, 2)) };
  for (const [name, rows] of Object.entries(tables)) files[`${name}.csv`] = strToU8(toCsv(rows));
  return zipSync(files, { level: 6 });
}

// --- deletion -----------------------------------------------------------------

export interface ErasureCount {
  category: string;
  action: 'erased' | 'pseudonymized' | 'revoked' | 'stripped' | 'restricted';
  rows: number;
}

/**
 * Erases what may go and restricts what the law keeps, in one transaction,
 * and writes the evidence (counts only). Users are pseudonymized rather than
 * deleted: their ids are referenced by keys and usage metadata.
 */
export async function eraseSubject(db: Db, requestId: string, subject: Subject): Promise<ErasureCount[]> {
  return db.transaction(async (trx) => {
    const counts: ErasureCount[] = [];
    const { userIds, billingAccountIds } = subject;
    const n = (r: unknown) => (typeof r === 'number' ? r : Number((r as { rowCount?: number })?.rowCount ?? 0));
    counts.push({
      category: 'api_keys',
      action: 'revoked',
      rows: n(await trx('api_keys').whereIn('user_id', userIds).whereNull('revoked_at').update({ revoked_at: trx.fn.now() })),
    });
    counts.push({ category: 'login_records', action: 'erased', rows: n(await trx('login_records').whereIn('user_id', userIds).delete()) });
    counts.push({ category: 'consent_records', action: 'erased', rows: n(await trx('consent_records').whereIn('user_id', userIds).delete()) });
    counts.push({
      category: 'usage_metadata',
      action: 'stripped',
      rows: n(await trx.raw(`UPDATE usage_events SET source_ip = NULL, user_agent = NULL WHERE user_id = ANY(?::uuid[]) AND (source_ip IS NOT NULL OR user_agent IS NOT NULL)`, [userIds])),
    });
    const keyIds: string[] = await trx('api_keys').whereIn('user_id', userIds).pluck('id');
    counts.push({
      category: 'security_events',
      action: 'stripped',
      rows: n(await trx.raw(`UPDATE security_events SET source_ip = NULL, user_agent = NULL WHERE api_key_id = ANY(?::uuid[]) AND (source_ip IS NOT NULL OR user_agent IS NOT NULL)`, [keyIds])),
    });
    counts.push({
      category: 'users',
      action: 'pseudonymized',
      rows: n(
        await trx.raw(
          `UPDATE users SET name = 'erased', email = 'erased-' || id || '@erased.invalid', phone = NULL, job_title = NULL,
                  marketing_consent = false, processing_restricted = true, erased_at = now(), updated_at = now()
            WHERE id = ANY(?::uuid[])`,
          [userIds],
        ),
      ),
    });
    // The billing contact on accounts whose records the law keeps: kept on the invoices, cleared for the future, account restricted.
    counts.push({
      category: 'accounts',
      action: 'restricted',
      rows: n(await trx('accounts').whereIn('id', billingAccountIds).update({ billing_email: null, processing_restricted: true, updated_at: trx.fn.now() })),
    });
    // Per account and category, so that the retention schedule can finish each one when its period ends (dsr_kept_records).
    for (const kept of RETAINED_BY_LAW) {
      let total = 0;
      for (const accountId of billingAccountIds) {
        const rows =
          kept.category === 'invoices'
            ? await trx('invoices').where('account_id', accountId).count('* as n').first()
            : kept.category === 'payments'
              ? await trx('payments').where('account_id', accountId).count('* as n').first()
              : kept.category === 'ledger_entries'
                ? await trx('ledger_entries').where('account_id', accountId).count('* as n').first()
                : await trx('accounts').where('id', accountId).whereNotNull('vat_id').count('* as n').first();
        const n = Number(rows?.n ?? 0);
        if (n > 0) await trx('dsr_kept_records').insert({ request_id: requestId, account_id: accountId, category: kept.category, rows: n }).onConflict(['request_id', 'account_id', 'category']).ignore();
        total += n;
      }
      counts.push({ category: kept.category, action: 'restricted', rows: total });
    }
    // Usage metadata (already stripped of IP and browser above) waits only until it is invoiced and reconciled.
    const usage = (await trx.raw(`SELECT user_id, account_id, count(*)::int AS n FROM usage_events WHERE user_id = ANY(?::uuid[]) GROUP BY 1, 2`, [userIds])).rows as { user_id: string; account_id: string; n: number }[];
    for (const u of usage) {
      await trx('dsr_kept_records').insert({ request_id: requestId, account_id: u.account_id, category: 'usage_metadata', subject_user_id: u.user_id, rows: u.n }).onConflict(['request_id', 'account_id', 'category']).ignore();
    }
    for (const c of counts) {
      await trx('erasure_evidence').insert({ request_id: requestId, category: c.category, rows: c.rows, action: c.action }).onConflict(['request_id', 'category', 'action']).ignore();
    }
    // The request itself no longer needs the address once the answer is out: see closeRequest.
    return counts;
  });
}

// --- restriction, objection, consent ---------------------------------------------------

export async function setProcessingFlags(db: Db, requestId: string, type: Extract<DsrType, 'restriction' | 'objection' | 'consent_withdrawal'>, subject: Subject): Promise<number> {
  return db.transaction(async (trx) => {
    const ids = subject.userIds;
    if (type === 'restriction') return Number(await trx('users').whereIn('id', ids).update({ processing_restricted: true, updated_at: trx.fn.now() }));
    if (type === 'objection') return Number(await trx('users').whereIn('id', ids).update({ objected: true, updated_at: trx.fn.now() }));
    for (const id of ids) {
      const last = await trx('consent_records').where({ user_id: id, purpose: 'marketing', source: `dsr:${requestId}` }).first('id');
      if (!last) await trx('consent_records').insert({ user_id: id, purpose: 'marketing', granted: false, source: `dsr:${requestId}` });
    }
    return Number(await trx('users').whereIn('id', ids).update({ marketing_consent: false, updated_at: trx.fn.now() }));
  });
}

// --- correction -------------------------------------------------------------------

export interface Correction {
  user?: Partial<Record<(typeof CORRECTABLE_FIELDS.user)[number], string | null>>;
  account?: Partial<Record<(typeof CORRECTABLE_FIELDS.account)[number], string | null>>;
}

/**
 * The accounts whose own fields a subject's correction may change: an
 * account's record belongs to the organisation, and its billing contact is
 * the one person who speaks for it here. Being a user of the account, or
 * naming it in the request, is not enough. Billing contact of several
 * accounts and none named: none (which one is meant is not ours to guess).
 */
export function correctableAccounts(subject: Subject, accountId: string | null): string[] {
  const own = subject.billingAccountIds.filter((id) => accountId === null || id === accountId);
  return own.length === 1 ? own : [];
}

/** Applies approved changes to the given accounts (see correctableAccounts); returns the names of the fields changed (never their values). */
export async function applyCorrection(db: Db, subject: Subject, accounts: string[], changes: Correction): Promise<string[]> {
  return db.transaction(async (trx) => {
    const changed: string[] = [];
    if (changes.user && Object.keys(changes.user).length && subject.userIds.length) {
      await trx('users').whereIn('id', subject.userIds).update({ ...changes.user, updated_at: trx.fn.now() });
      changed.push(...Object.keys(changes.user).map((f) => `user.${f}`));
    }
    if (changes.account && Object.keys(changes.account).length && accounts.length) {
      await trx('accounts').whereIn('id', accounts).update({ ...changes.account, updated_at: trx.fn.now() });
      changed.push(...Object.keys(changes.account).map((f) => `account.${f}`));
    }
    return changed;
  });
}
