import { createHash } from 'node:crypto';
import { RETAINED_BY_LAW, type Correction, type DsrStatus, type DsrType, type Subject } from './rights.rules';
import type { Db, DbOrTrx, Trx } from '../db/knex';

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

export async function findSubject(db: DbOrTrx, email: string, accountId: string | null): Promise<Subject> {
  const users = db('users').whereRaw('lower(email) = lower(?)', [email]).whereNull('erased_at');
  if (accountId) users.where({ account_id: accountId });
  const rows = await users.select('id', 'account_id');
  const billing = db('accounts').whereRaw('lower(billing_email) = lower(?)', [email]);
  if (accountId) billing.where({ id: accountId });
  const billingAccountIds: string[] = await billing.pluck('id');
  const userIds: string[] = rows.map((r) => r.id);
  const invitations = db('customer_invitations').where((w) => {
    w.whereRaw('lower(email) = lower(?)', [email]).orWhereIn('accepted_user_id', userIds);
  });
  if (accountId) invitations.where({ account_id: accountId });
  const invitationIds: string[] = await invitations.pluck('id');
  return { userIds, memberAccountIds: [...new Set(rows.map((r) => r.account_id as string))], billingAccountIds, invitationIds };
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
  // Customer console sign-ins: never the session id's hash or its CSRF token.
  out.customer_sessions = clean(await db('customer_sessions').whereIn('user_id', userIds).orderBy('created_at').select('created_at', 'expires_at', 'revoked_at', 'user_agent', 'ip_prefix'));
  // Two-step sign-in and sign-in links: when, how many codes are left, never the secret, a code or a token's hash.
  out.two_step_sign_in = clean(
    await db('user_totp as t')
      .whereIn('t.user_id', userIds)
      .whereNotNull('t.confirmed_at')
      .select('t.user_id', 't.confirmed_at as enabled_since', db.raw('(SELECT count(*)::int FROM user_recovery_codes r WHERE r.user_id = t.user_id AND r.used_at IS NULL) AS unused_recovery_codes')),
  );
  out.customer_login_links = clean(await db('customer_login_links').whereIn('user_id', userIds).orderBy('created_at').select('user_id', 'created_at', 'expires_at', 'used_at'));
  out.consents = clean(await db('consent_records').whereIn('user_id', userIds).orderBy('id').select('user_id', 'purpose', 'granted', 'categories', 'policy_version', 'source', 'at'));
  // Never the token's hash.
  out.customer_invitations = clean(
    await db('customer_invitations').whereIn('id', subject.invitationIds ?? []).orderBy('created_at').select('account_id', 'email', 'console_role', 'created_at', 'expires_at', 'accepted_at', 'revoked_at'),
  );
  out.policy_acknowledgements = clean(await db('policy_acknowledgements').whereIn('user_id', userIds).orderBy('at').select('user_id', 'version', 'at'));
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
  out.rights_requests = clean(await db('dsr_requests').where({ subject_email_hash: emailHashValue }).orderBy('received_at').select('id', 'type', 'channel', 'status', 'received_at', 'due_date', 'closed_at'));
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

// --- deletion -----------------------------------------------------------------

export interface ErasureCount {
  category: string;
  action: 'erased' | 'pseudonymized' | 'revoked' | 'stripped' | 'restricted';
  rows: number;
}

/**
 * Erases what may go and restricts what the law keeps, in the caller's transaction,
 * and writes the evidence (counts only). Users are pseudonymized rather than
 * deleted: their ids are referenced by keys and usage metadata.
 */
export async function eraseSubject(trx: Trx, requestId: string, subject: Subject): Promise<ErasureCount[]> {
  const counts: ErasureCount[] = [];
  const { userIds, billingAccountIds } = subject;
  const n = (r: unknown) => (typeof r === 'number' ? r : Number((r as { rowCount?: number })?.rowCount ?? 0));
  counts.push({
    category: 'api_keys',
    action: 'revoked',
    rows: n(await trx('api_keys').whereIn('user_id', userIds).whereNull('revoked_at').update({ revoked_at: trx.fn.now() })),
  });
  counts.push({ category: 'login_records', action: 'erased', rows: n(await trx('login_records').whereIn('user_id', userIds).delete()) });
  // Deleting the customer console sessions also signs the user out everywhere.
  counts.push({ category: 'customer_sessions', action: 'erased', rows: n(await trx('customer_sessions').whereIn('user_id', userIds).delete()) });
  // The second factor and sign-in links go with the user: a spent or unspent link opens nothing after erasure.
  counts.push({ category: 'user_recovery_codes', action: 'erased', rows: n(await trx('user_recovery_codes').whereIn('user_id', userIds).delete()) });
  counts.push({ category: 'user_totp', action: 'erased', rows: n(await trx('user_totp').whereIn('user_id', userIds).delete()) });
  counts.push({ category: 'customer_login_links', action: 'erased', rows: n(await trx('customer_login_links').whereIn('user_id', userIds).delete()) });
  counts.push({ category: 'consent_records', action: 'erased', rows: n(await trx('consent_records').whereIn('user_id', userIds).delete()) });
  // An open invitation goes too: its link stops working.
  counts.push({ category: 'customer_invitations', action: 'erased', rows: n(await trx('customer_invitations').whereIn('id', subject.invitationIds ?? []).delete()) });
  counts.push({ category: 'policy_acknowledgements', action: 'erased', rows: n(await trx('policy_acknowledgements').whereIn('user_id', userIds).delete()) });
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
        `UPDATE users SET name = 'erased', email = 'erased-' || id || '@erased.invalid', phone = NULL, job_title = NULL, password_hash = NULL,
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
}

// --- restriction, objection, consent ---------------------------------------------------

export async function setProcessingFlags(trx: Trx, requestId: string, type: Extract<DsrType, 'restriction' | 'objection' | 'consent_withdrawal'>, subject: Subject): Promise<number> {
  const ids = subject.userIds;
  if (type === 'restriction') return Number(await trx('users').whereIn('id', ids).update({ processing_restricted: true, updated_at: trx.fn.now() }));
  if (type === 'objection') return Number(await trx('users').whereIn('id', ids).update({ objected: true, updated_at: trx.fn.now() }));
  for (const id of ids) {
    const last = await trx('consent_records').where({ user_id: id, purpose: 'marketing', source: `dsr:${requestId}` }).first('id');
    if (!last) await trx('consent_records').insert({ user_id: id, purpose: 'marketing', granted: false, source: `dsr:${requestId}` });
  }
  return Number(await trx('users').whereIn('id', ids).update({ marketing_consent: false, updated_at: trx.fn.now() }));
}

// --- correction -------------------------------------------------------------------

/** Applies approved changes to the given accounts (see correctableAccounts); returns the names of the fields changed (never their values). */
export async function applyCorrection(trx: Trx, subject: Subject, accounts: string[], changes: Correction): Promise<string[]> {
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
}

// --- requests -------------------------------------------------------------------

export async function findRequest(db: DbOrTrx, id: string): Promise<any> {
  return db('dsr_requests').where({ id }).first();
}

export async function requestExists(db: Db, id: string): Promise<boolean> {
  return !!(await db('dsr_requests').where({ id }).first('id'));
}

/** A request's wrong codes: its counted attempts less the one that verified it. */
const WRONG_CODES = "GREATEST(verification_attempts - CASE WHEN verification_method = 'email_code' THEN 1 ELSE 0 END, 0)";

/** One public intake at a time over all instances, until the transaction ends. */
export async function lockPublicIntake(trx: Trx): Promise<void> {
  await trx.raw('SELECT pg_advisory_xact_lock(hashtext(?))', ['dsr:public-intake']);
}

export async function publicRequestsSince(trx: Trx, since: Date): Promise<number> {
  const recent = await trx('dsr_requests').where({ channel: 'subject' }).where('received_at', '>', since).count({ n: '*' }).first();
  return Number(recent?.n ?? 0);
}

/** Wrong codes over all requests of an address and type received since then. */
export async function wrongCodesSince(trx: Trx, subjectHash: string, type: string, since: Date): Promise<number> {
  const failed = await trx('dsr_requests')
    .where({ subject_email_hash: subjectHash, type })
    .where('received_at', '>', since)
    .first(trx.raw(`COALESCE(SUM(${WRONG_CODES}), 0)::int AS n`));
  return Number(failed?.n ?? 0);
}

/** Whether the address has an open request of the type that still counts: verified, or with a live code and guesses left. */
export async function liveRequestExists(trx: Trx, subjectHash: string, type: string, now: Date, maxAttempts: number): Promise<boolean> {
  const earlier = await trx('dsr_requests')
    .where({ subject_email_hash: subjectHash, type })
    .whereNull('closed_at')
    .where((w) =>
      w.whereNotNull('verified_at').orWhere((u) =>
        u.where('verification_attempts', '<', maxAttempts).where((c) => c.whereNull('verification_code_expires_at').orWhere('verification_code_expires_at', '>', now)),
      ),
    )
    .first('id');
  return !!earlier;
}

export async function insertRequest(trx: Trx, row: Record<string, unknown>): Promise<{ id: string; status: string; due_date: string; due_at: Date }> {
  const [inserted] = await trx('dsr_requests').insert(row).returning(['id', 'status', 'due_date', 'due_at']);
  return inserted;
}

/**
 * Counts a code attempt and returns the stored code hash, in one statement, so
 * concurrent guesses cannot all pass a limit that each read before any of them
 * counted. Nothing is counted (undefined) for a request that is verified or
 * closed, whose code was not sent or has expired, or that is out of guesses
 * (its own, or with the wrong codes of the address's other requests of the
 * type since `since`).
 */
export async function countCodeAttempt(db: Db, id: string, limits: { maxAttempts: number; now: Date; since: Date; failuresPerDay: number }): Promise<string | undefined> {
  const counted = await db.raw(
    `UPDATE dsr_requests r SET verification_attempts = verification_attempts + 1
      WHERE id = ? AND verified_at IS NULL AND closed_at IS NULL AND verification_attempts < ?
        AND verification_code_hash IS NOT NULL AND verification_code_expires_at > ?
        AND verification_attempts + COALESCE((
          SELECT SUM(${WRONG_CODES}) FROM dsr_requests o
           WHERE o.subject_email_hash = r.subject_email_hash AND o.type = r.type AND o.id <> r.id AND o.received_at > ?), 0) < ?
      RETURNING verification_code_hash`,
    [id, limits.maxAttempts, limits.now, limits.since, limits.failuresPerDay],
  );
  return (counted.rows[0] as { verification_code_hash: string } | undefined)?.verification_code_hash;
}

/** Records identity as verified by the emailed code; 0 if it already was. */
export async function markVerifiedByCode(db: Db, id: string, at: Date): Promise<number> {
  return db('dsr_requests').where({ id }).whereNull('verified_at').update({ verified_at: at, verification_method: 'email_code', verification_code_hash: null });
}

export async function markVerified(db: Db, id: string, at: Date, method: string): Promise<void> {
  await db('dsr_requests').where({ id }).update({ verified_at: at, verification_method: method });
}

export async function setVerificationCode(db: Db, id: string, hash: string, expiresAt: Date): Promise<void> {
  await db('dsr_requests').where({ id }).whereNull('verification_code_hash').update({ verification_code_hash: hash, verification_code_expires_at: expiresAt, status: 'verifying' });
}

export async function setExtensionReason(db: Db, id: string, reason: string): Promise<void> {
  await db('dsr_requests').where({ id }).update({ extension_reason: reason });
}

export async function setRefusals(db: DbOrTrx, id: string, refusals: unknown[]): Promise<void> {
  await db('dsr_requests').where({ id }).update({ refusals: JSON.stringify(refusals) });
}

/** The refusals recorded so far, with the request locked until the transaction ends. */
export async function lockRefusals(trx: Trx, id: string): Promise<unknown[]> {
  const row = await trx('dsr_requests').where({ id }).forUpdate().first('refusals');
  return row.refusals as unknown[];
}

export async function setDeadline(db: Db, id: string, d: { dueDate: string; dueAt: string; extended: boolean }): Promise<void> {
  await db('dsr_requests').where({ id }).update({ due_date: d.dueDate, due_at: d.dueAt, ...(d.extended ? { extended: true } : {}) });
}

export async function markOverdue(db: Db, id: string): Promise<void> {
  await db('dsr_requests').where({ id }).update({ overdue: true });
}

/** Only from the states before verification ends: a later state is never set back. */
export async function markAwaitingApproval(db: Db, id: string): Promise<void> {
  await db('dsr_requests').where({ id }).whereIn('status', ['received', 'verifying']).update({ status: 'awaiting_approval' });
}

export async function markInProgress(db: Db, id: string): Promise<void> {
  await db('dsr_requests').where({ id }).update({ status: 'in_progress' });
}

export async function setUserIds(db: Db, id: string, userIds: string[]): Promise<void> {
  await db('dsr_requests').where({ id }).update({ user_ids: userIds });
}

export async function markFailed(trx: Trx, id: string, reason: string): Promise<void> {
  await trx('dsr_requests').where({ id }).update({ status: 'failed', failure_reason: reason, closed_at: trx.raw('COALESCE(closed_at, now())') });
}

export async function closeRequest(trx: Trx, id: string, status: string, response: Record<string, unknown>): Promise<void> {
  await trx('dsr_requests').where({ id }).update({ status, response: JSON.stringify(response), closed_at: trx.raw('COALESCE(closed_at, now())') });
}

export async function forgetSubjectEmail(trx: Trx, id: string): Promise<void> {
  await trx('dsr_requests').where({ id }).update({ subject_email: null });
}

export async function requestEvents(db: Db, id: string): Promise<{ at: Date; actor: string; action: string; detail: unknown }[]> {
  return db('dsr_events').where({ request_id: id }).orderBy('id').select('at', 'actor', 'action', 'detail');
}

export async function erasureEvidence(db: Db, id: string): Promise<{ category: string; action: string; rows: number; at: Date }[]> {
  return db('erasure_evidence').where({ request_id: id }).orderBy('id').select('category', 'action', 'rows', 'at');
}

export interface RequestFilter {
  limit: number;
  /** A request id known to exist: the listing continues after it. */
  after?: string | undefined;
  status?: string | undefined;
  type?: string | undefined;
  overdue?: 'true' | 'false' | undefined;
}

/** By due date; open = not answered yet (`answered` lists those statuses); overdue = flagged, or unanswered and due by `now`. */
export async function listRequests(db: Db, filter: RequestFilter, answered: readonly DsrStatus[], now: Date): Promise<any[]> {
  const q = db('dsr_requests').orderBy([{ column: 'due_at' }, { column: 'id' }]).limit(filter.limit);
  if (filter.after) q.whereRaw('(due_at, id) > (SELECT due_at, id FROM dsr_requests WHERE id = ?)', [filter.after]);
  if (filter.status === 'open') q.whereNotIn('status', answered as DsrStatus[]);
  else if (filter.status) q.where({ status: filter.status });
  if (filter.type) q.where({ type: filter.type });
  if (filter.overdue === 'true') q.where((w) => w.where({ overdue: true }).orWhere((o) => o.whereNotIn('status', answered as DsrStatus[]).where('due_at', '<=', now)));
  return q;
}

/** The users and accounts a correction would change, with the correctable fields' values now. */
export async function correctionTargets(db: Db, userIds: string[], accountIds: string[], fields: { user: readonly string[]; account: readonly string[] }): Promise<{ users: any[]; accounts: any[] }> {
  const users: any[] = userIds.length ? await db('users').whereIn('id', userIds).orderBy('id').select('id', 'account_id', ...fields.user) : [];
  const accounts: any[] = accountIds.length ? await db('accounts').whereIn('id', accountIds).orderBy('id').select('id', ...fields.account) : [];
  return { users, accounts };
}

// --- packages -----------------------------------------------------------------------

export async function saveExport(db: Db, row: { requestId: string; ciphertext: Buffer; iv: Buffer; authTag: Buffer; bytes: number; maxDownloads: number; expiresAt: Date }): Promise<string> {
  const [inserted] = await db('dsr_exports')
    .insert({
      request_id: row.requestId,
      format: 'zip',
      ciphertext: row.ciphertext,
      iv: row.iv,
      auth_tag: row.authTag,
      bytes: row.bytes,
      max_downloads: row.maxDownloads,
      expires_at: row.expiresAt,
    })
    .onConflict('request_id')
    .merge(['ciphertext', 'iv', 'auth_tag', 'bytes', 'expires_at'])
    .returning('id');
  return inserted.id;
}

export async function findExport(db: Db, exportId: string): Promise<{ expires_at: Date; max_downloads: number }> {
  return db('dsr_exports').where({ id: exportId }).first('expires_at', 'max_downloads');
}

export async function exportOfRequest(db: Db, requestId: string): Promise<any> {
  return db('dsr_exports').where({ request_id: requestId }).first();
}

/** The export, locked until the transaction ends (downloads are counted under the lock). */
export async function lockExport(trx: Trx, exportId: string): Promise<any> {
  return trx('dsr_exports').where({ id: exportId }).forUpdate().first();
}

export async function countDownload(trx: Trx, exportId: string): Promise<void> {
  await trx('dsr_exports').where({ id: exportId }).increment('downloads', 1);
}

// --- notifications -----------------------------------------------------------------------

export interface OutboxMessage {
  id: string | number;
  idempotency_key: string;
  recipient: string;
  subject: string;
  body: string;
}

export async function pendingNotifications(db: Db, keys: string[]): Promise<OutboxMessage[]> {
  return db('notification_outbox').whereIn('idempotency_key', keys).whereNull('sent_at').orderBy('id');
}

/** Marks a message sent and clears its body in the same statement: bodies carry one-time codes and package links. */
export async function markNotificationSent(db: Db, id: string | number): Promise<void> {
  await db('notification_outbox').where({ id }).update({ sent_at: db.fn.now(), body: '' });
}

/** The messages sent to an address (after a deletion is answered). */
export async function deleteSentNotificationsTo(trx: Trx, email: string): Promise<void> {
  await trx('notification_outbox').whereRaw('lower(recipient) = lower(?)', [email]).whereNotNull('sent_at').delete();
}

// --- requests filed in the customer console (identity verified by the sign-in) ---

/** The signed-in user's email, if the user is of that account and not erased. */
export async function consoleUser(db: Db, userId: string, accountId: string): Promise<{ email: string } | undefined> {
  return db('users').where({ id: userId, account_id: accountId }).whereNull('erased_at').first('email');
}

/** The requests one console user filed (created_by), newest first. */
export async function requestsFiledBy(db: Db, createdBy: string, limit: number): Promise<any[]> {
  return db('dsr_requests').where({ created_by: createdBy }).orderBy([{ column: 'received_at', order: 'desc' }, { column: 'id' }]).limit(limit);
}

/** Whether that console user has an open (not closed) request of the type. */
export async function openRequestFiledBy(db: Db, createdBy: string, type: string): Promise<string | undefined> {
  return (await db('dsr_requests').where({ created_by: createdBy, type }).whereNull('closed_at').whereNot({ status: 'failed' }).first('id'))?.id;
}
