import type { Clock } from '../clock';
import type { Config } from '../config';
import type { Db } from '../db/knex';
import { createMailer } from '../notify/mailer';
import { policyPeriods } from '../retention/retention.data';
import * as accessAnswer from './accessAnswer.data';
import { article15Section } from './accessAnswer.rules';
import { packageArchive } from './archive';
import { codeKey, hashCode } from './codes';
import { packageKey, seal, signLink } from './packages';
import * as data from './privacy.data';
import { RETAINED_BY_LAW, type Correction, type DsrType, type Subject } from './rights.rules';

/**
 * What the activities of the `dsr:{requestId}` workflow do to the data: the
 * request's state and trail, notices to the subject and to compliance staff,
 * and the effects of each right (packages, erasure, flags, corrections).
 * Every write is idempotent: events and messages by key, packages by request,
 * effects by their nature (a flag set twice is set).
 */
export interface PrivacyDeps {
  dsr: Config['dsr'];
  mail: Config['mail'];
  dataDir: string;
}

export function privacyFulfilmentService(deps: { db: Db; clock: Clock; privacy: PrivacyDeps }) {
  const { db, clock, privacy } = deps;
  const { dsr } = privacy;
  const mailer = createMailer(privacy.mail);

  /**
   * Sends the outbox messages of these keys not sent yet, each marked sent
   * (its body cleared) right after it went; returns how many went.
   */
  async function deliver(keys: string[]): Promise<number> {
    const pending = await data.pendingNotifications(db, keys);
    for (const m of pending) {
      await mailer.send(m);
      await data.markNotificationSent(db, m.id);
    }
    return pending.length;
  }

  return {
    /** The request's row, or undefined. */
    request: (requestId: string) => data.findRequest(db, requestId),

    appendEvent: (requestId: string, actor: string, action: string, detail: Record<string, unknown>, idempotencyKey: string) =>
      data.appendDsrEvent(db, requestId, actor, action, detail, idempotencyKey),

    /** Enqueues a message (once per key) and delivers it. */
    async notify(key: string, recipient: string, subject: string, body: string): Promise<void> {
      await data.enqueueNotification(db, { key, recipient, subject, body });
      await deliver([key]);
    },

    /** Stores the keyed hash of the code sent, valid DSR_CODE_TTL_S, unless a code was stored already. */
    async saveVerificationCode(requestId: string, code: string): Promise<void> {
      await data.setVerificationCode(db, requestId, hashCode(codeKey({ dsr, dataDir: privacy.dataDir }), requestId, code), new Date(clock.now().getTime() + dsr.codeTtlS * 1000));
    },

    setDeadline: (requestId: string, d: { dueDate: string; dueAt: string; extended: boolean }) => data.setDeadline(db, requestId, d),
    markOverdue: (requestId: string) => data.markOverdue(db, requestId),
    markAwaitingApproval: (requestId: string) => data.markAwaitingApproval(db, requestId),

    /** The request ends `failed` with the reason, and its trail says so. */
    async markFailed(requestId: string, reason: string): Promise<void> {
      await db.transaction(async (trx) => {
        await data.markFailed(trx, requestId, reason);
        await data.appendDsrEvent(trx, requestId, 'system:workflow', 'fulfilment_failed', { reason }, 'fulfilment_failed');
      });
    },

    /** Fulfilment starts: the request is in progress and records whose data it concerns. */
    async startFulfilment(r: { id: string; subject_email: string | null; account_id: string | null }): Promise<Subject> {
      await data.markInProgress(db, r.id);
      const subject = await data.findSubject(db, r.subject_email ?? '', r.account_id);
      await data.setUserIds(db, r.id, subject.userIds);
      return subject;
    },

    findSubject: (email: string, accountId: string | null) => data.findSubject(db, email, accountId),
    collectSubjectData: (subject: Subject, emailHash: string, opts: { portable: boolean }) => data.collectSubjectData(db, subject, emailHash, opts),
    providersUsed: (subject: Subject) => data.providersUsed(db, subject),

    /**
     * Archives, encrypts and stores the request's package (one per request); returns its export id.
     * Every package (access, portability) gets the article-15 section, built from the register and the
     * subject's own data, found again from the request as startFulfilment found it.
     */
    async storePackage(requestId: string, document: Record<string, unknown>, tables: Record<string, Record<string, unknown>[]>): Promise<string> {
      const r = await data.findRequest(db, requestId);
      const subject = await data.findSubject(db, r?.subject_email ?? '', r?.account_id ?? null);
      const article15 = article15Section(await accessAnswer.article15Facts(db, subject, r?.subject_email ?? null, tables));
      const archive = packageArchive({ ...document, article15 }, tables);
      const sealed = seal(packageKey({ dsr, dataDir: privacy.dataDir }), archive, requestId);
      return data.saveExport(db, {
        requestId,
        ciphertext: sealed.ciphertext,
        iv: sealed.iv,
        authTag: sealed.authTag,
        bytes: archive.length,
        maxDownloads: dsr.packageMaxDownloads,
        expiresAt: new Date(clock.now().getTime() + dsr.packageTtlS * 1000),
      });
    },

    /** The package's expiry and download limit, and the signature of its link. */
    async packageLink(exportId: string) {
      const exp = await data.findExport(db, exportId);
      const link = signLink(packageKey({ dsr, dataDir: privacy.dataDir }), exportId, new Date(exp.expires_at));
      return { exp, link };
    },

    erase: (requestId: string, subject: Subject) => db.transaction((trx) => data.eraseSubject(trx, requestId, subject)),

    setProcessingFlags: (requestId: string, type: Extract<DsrType, 'restriction' | 'objection' | 'consent_withdrawal'>, subject: Subject) =>
      db.transaction((trx) => data.setProcessingFlags(trx, requestId, type, subject)),

    /** Records refusals of these items on third parties' rights (the subject is not the billing contact), once each. */
    async refuseNotBillingContact(requestId: string, items: string[], explanation: string): Promise<void> {
      await db.transaction(async (trx) => {
        const refusals = await data.lockRefusals(trx, requestId);
        const known = new Set((refusals as { item: string }[]).map((x) => x.item));
        const add = items.filter((item) => !known.has(item)).map((item) => ({ item, ground: 'third_party_rights', explanation, by: 'system:workflow' }));
        if (add.length) await data.setRefusals(trx, requestId, [...refusals, ...add]);
        await data.appendDsrEvent(trx, requestId, 'system:workflow', 'refusal_recorded', { items, ground: 'third_party_rights', reason: 'not_billing_contact' }, `refusal:not_billing_contact`);
      });
    },

    applyCorrection: (subject: Subject, accounts: string[], changes: Correction) => db.transaction((trx) => data.applyCorrection(trx, subject, accounts, changes)),

    /**
     * What a deletion must keep, with the periods the retention schedule actually
     * enforces (retention_policies; tax data lives on the invoices and goes with them),
     * so that the answer never promises a period the schedule does not keep.
     */
    async retainedByLaw(): Promise<{ category: string; basis: string; years: number }[]> {
      const periods = await policyPeriods(db, ['invoices', 'payments', 'ledger_entries']);
      return RETAINED_BY_LAW.map((k) => ({ ...k, years: periods.get(k.category === 'tax_data' ? 'invoices' : k.category) ?? k.years }));
    },

    /** The final status and the answer sent, and the `closed` event. */
    async close(requestId: string, status: string, refusals: unknown[], response: Record<string, unknown>): Promise<void> {
      await db.transaction(async (trx) => {
        await data.closeRequest(trx, requestId, status, response);
        await data.appendDsrEvent(trx, requestId, 'system:workflow', 'closed', { status, refusals }, 'closed');
      });
    },

    /** After a deletion is answered: the request forgets the address, and the messages sent to it go. */
    async forgetSubjectEmail(requestId: string, email: string | null): Promise<void> {
      await db.transaction(async (trx) => {
        if (email) await data.deleteSentNotificationsTo(trx, email);
        await data.forgetSubjectEmail(trx, requestId);
        await data.appendDsrEvent(trx, requestId, 'system:workflow', 'subject_email_erased', {}, 'subject_email_erased');
      });
    },
  };
}

export type PrivacyFulfilmentService = ReturnType<typeof privacyFulfilmentService>;
