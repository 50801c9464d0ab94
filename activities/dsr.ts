import { randomInt } from 'node:crypto';
import { permanentFailure } from './errors';
import type { Clock } from '../src/clock';
import { changedFields, correctionChanges } from '../src/privacy/correction';
import type { PrivacyDeps, PrivacyFulfilmentService } from '../src/privacy/fulfilment.service';
import {
  COMPLAINT_NOTICE,
  correctableAccounts,
  DSR_TYPE_LABEL,
  PAYLOAD_NOTICE,
  REFUSAL_GROUND_LABEL,
  type Correction,
  type DsrType,
  type FulfilmentFailureReason,
  type RefusalGround,
} from '../src/privacy/rights.rules';
import type { DsrFulfilment, DsrRefusalItem } from '../workflows/messages';

export type { PrivacyDeps } from '../src/privacy/fulfilment.service';

/**
 * Activities of `dsr:{requestId}`. They read the subject's email from
 * PostgreSQL and return ids and counts only, so nothing personal reaches the
 * workflow history. Every write is idempotent: events and messages by key,
 * packages by request, effects by their nature (a flag set twice is set).
 */
export function dsrActivities({ privacyFulfilment: svc, clock, privacy }: { privacyFulfilment: PrivacyFulfilmentService; clock: Clock; privacy: PrivacyDeps }) {
  const { dsr } = privacy;

  async function load(requestId: string) {
    const r = await svc.request(requestId);
    if (!r) throw permanentFailure(`no data-subject request ${requestId}`, 'UnknownRequest');
    return r;
  }
  async function notify(key: string, recipient: string, subject: string, body: string) {
    await svc.notify(key, recipient, subject, body);
  }
  const ref = (id: string) => `request ${id.slice(0, 8)}`;
  /** A data error: the workflow records the request as failed with this reason instead of retrying. The message names fields, never values. */
  const fail = (reason: FulfilmentFailureReason, message: string): never => {
    throw permanentFailure(`correction not applied: ${message}`, reason);
  };

  return {
    /** Acknowledges receipt to the subject and sends the one-time code to the email on record. */
    async dsrOpened(input: { requestId: string }): Promise<void> {
      const r = await load(input.requestId);
      await svc.appendEvent(r.id, 'system:workflow', 'verification_started', { channel: r.channel }, 'verification_started');
      if (r.verified_at || !r.subject_email) return;
      // A new code only if none was sent yet: a retried activity must not invalidate the one in the mailbox.
      if (!r.verification_code_hash) {
        const code = String(randomInt(0, 1_000_000)).padStart(6, '0');
        await svc.saveVerificationCode(r.id, code);
        const due = new Date(r.due_at).toISOString().slice(0, 10);
        await notify(
          `dsr:${r.id}:code`,
          r.subject_email,
          `Your privacy request (${ref(r.id)}): confirm it is you`,
          [
            `We received your request for ${DSR_TYPE_LABEL[r.type as DsrType]} on ${new Date(r.received_at).toISOString().slice(0, 10)}.`,
            `We will answer by ${due} at the latest.`,
            '',
            `To confirm that the request comes from you, enter this code: ${code}`,
            `or send it to ${privacy.dsr.publicBaseUrl}/privacy/requests/${r.id}/verify as {"code": "${code}"}.`,
            `The code is valid for ${dsr.codeTtlS >= 7_200 ? `${Math.floor(dsr.codeTtlS / 3600)} hours` : `${Math.max(1, Math.floor(dsr.codeTtlS / 60))} minutes`}; after that, file the request again for a new one. If you did not make this request, ignore this message.`,
          ].join('\n'),
        );
        await svc.appendEvent(r.id, 'system:workflow', 'verification_code_sent', {}, 'verification_code_sent');
      }
    },

    async dsrDeadlineChanged(input: { requestId: string; dueDate: string; dueAt: string; reason: 'extended' | 'verification_pause' }): Promise<void> {
      const r = await load(input.requestId);
      await svc.setDeadline(r.id, { dueDate: input.dueDate, dueAt: input.dueAt, extended: input.reason === 'extended' });
      await svc.appendEvent(r.id, 'system:workflow', 'deadline_changed', { reason: input.reason, dueDate: input.dueDate }, `deadline:${input.reason}:${input.dueAt}`);
      if (input.reason === 'extended' && r.subject_email) {
        await notify(
          `dsr:${r.id}:extended`,
          r.subject_email,
          `Your privacy request (${ref(r.id)}): we need more time`,
          `We are extending the time to answer your request to ${input.dueDate}.\nReason: ${r.extension_reason ?? 'the complexity and number of requests'}.\n\n${COMPLAINT_NOTICE}`,
        );
      }
    },

    /** A reminder to compliance staff before the deadline, or the overdue flag at it. */
    async dsrDeadlineEvent(input: { requestId: string; kind: 'reminder' | 'overdue'; key: string; dueAt: string }): Promise<void> {
      const r = await load(input.requestId);
      if (input.kind === 'overdue') await svc.markOverdue(r.id);
      await svc.appendEvent(r.id, 'system:workflow', input.kind === 'overdue' ? 'overdue' : 'reminder_sent', { dueAt: input.dueAt }, input.key);
      await notify(
        `dsr:${r.id}:${input.key}`,
        dsr.complianceEmail,
        input.kind === 'overdue' ? `OVERDUE: privacy request ${r.id} (${r.type}) was due ${input.dueAt}` : `Reminder: privacy request ${r.id} (${r.type}) is due ${input.dueAt}`,
        `Status: ${r.status}. See: mixroute dsr show ${r.id}`,
      );
    },

    /** A verified correction now waits for compliance staff: written down, so that approval is accepted in this state only. */
    async dsrAwaitingApproval(input: { requestId: string }): Promise<void> {
      const r = await load(input.requestId);
      await svc.markAwaitingApproval(r.id);
      await svc.appendEvent(r.id, 'system:workflow', 'awaiting_approval', {}, 'awaiting_approval');
    },

    /**
     * The fulfilment cannot succeed on the data it was given: retrying would not
     * change that. The request ends `failed` with the reason code, on the open
     * list of compliance staff (who are told), since the subject has no answer yet.
     */
    async dsrFailed(input: { requestId: string; reason: string }): Promise<void> {
      const r = await load(input.requestId);
      await svc.markFailed(r.id, input.reason);
      await notify(
        `dsr:${r.id}:failed`,
        dsr.complianceEmail,
        `FAILED: privacy request ${r.id} (${r.type}) could not be fulfilled: ${input.reason}`,
        `The subject has not been answered; the request is due ${new Date(r.due_at).toISOString()}. See: mixroute dsr show ${r.id}`,
      );
    },

    /** The right's effect on the data. */
    async dsrFulfil(input: { requestId: string; refusedItems: string[] }): Promise<DsrFulfilment> {
      const r = await load(input.requestId);
      const subject = await svc.startFulfilment(r);
      const type = r.type as DsrType;
      const refused = new Set(input.refusedItems);
      let result: DsrFulfilment = { counts: {}, exportId: null, fieldsChanged: [] };

      if (type === 'access' || type === 'portability') {
        const tables = await svc.collectSubjectData(subject, r.subject_email_hash, { portable: type === 'portability' });
        for (const item of refused) delete tables[item];
        const providers = await svc.providersUsed(subject);
        const document = {
          request: { id: r.id, type, receivedAt: new Date(r.received_at).toISOString() },
          generatedAt: clock.now().toISOString(),
          payloadContent: { retained: false, notice: PAYLOAD_NOTICE, providers },
          ...(refused.size ? { withheld: [...refused] } : {}),
          data: tables,
        };
        const exportId = await svc.storePackage(r.id, document, tables);
        result = { counts: Object.fromEntries(Object.entries(tables).map(([k, v]) => [k, v.length])), exportId, fieldsChanged: [] };
      } else if (type === 'deletion') {
        const counts = await svc.erase(r.id, subject);
        result.counts = Object.fromEntries(counts.map((c) => [`${c.category}:${c.action}`, c.rows]));
      } else if (type === 'restriction' || type === 'objection' || type === 'consent_withdrawal') {
        result.counts = { users: await svc.setProcessingFlags(r.id, type, subject) };
      } else if (type === 'correction') {
        // Stored before validation matched staff edits, or edited since: checked again, and a
        // value no schema allows is a data error that no retry mends.
        const parsed = correctionChanges.safeParse(r.requested_changes ?? {});
        if (!parsed.success) fail('invalid_correction', `fields ${[...new Set(parsed.error.issues.map((i) => i.path.join('.')))].join(', ')} do not pass the staff schemas`);
        const changes = parsed.data as Correction;
        for (const item of refused) {
          const [rec, field] = item.split('.');
          if (rec === 'user' || rec === 'account') delete (changes[rec] as Record<string, unknown> | undefined)?.[field!];
        }
        const accounts = correctableAccounts(subject, r.account_id);
        if (Object.keys(changes.account ?? {}).length && !accounts.length) {
          const items = changedFields({ account: changes.account }).filter((f) => !refused.has(f));
          const explanation = 'only the billing contact of an account can have its details corrected (name the account if you are the contact of several)';
          await svc.refuseNotBillingContact(r.id, items, explanation);
          result.refused = items.map((item) => ({ item, ground: 'third_party_rights' }));
          delete changes.account;
        }
        try {
          result.fieldsChanged = await svc.applyCorrection(subject, accounts, changes);
        } catch (err) {
          // pg's message names the constraint, never the row's values (those are in err.detail, which stays out of the history).
          const pg = err as { code?: string; constraint?: string };
          if (pg.code === '23505') fail('correction_conflict', `a corrected value is already in use (${pg.constraint ?? 'unique constraint'})`);
          if (pg.code?.startsWith('22') || pg.code?.startsWith('23')) fail('correction_data_error', `the database refused the corrected values (${pg.code}${pg.constraint ? ` ${pg.constraint}` : ''})`);
          throw err;
        }
      } else if (type === 'payload') {
        result.counts = { providers: (await svc.providersUsed(subject)).length };
      }
      await svc.appendEvent(r.id, 'system:workflow', 'fulfilled', { counts: result.counts, fieldsChanged: result.fieldsChanged }, 'fulfilled');
      return result;
    },

    /** The answer to the subject, the final status, and (after a deletion) forgetting the address. */
    async dsrClose(input: { requestId: string; status: 'completed' | 'partially_completed' | 'refused' | 'withdrawn'; refusals: DsrRefusalItem[]; fulfilment: DsrFulfilment | null }): Promise<void> {
      const r = await load(input.requestId);
      const type = r.type as DsrType;
      const explanations = new Map<string, string>((r.refusals as { item: string; explanation?: string }[]).map((x) => [x.item, x.explanation ?? '']));
      const lines: string[] = [];
      const response: Record<string, unknown> = { status: input.status, type, closedAt: clock.now().toISOString() };
      if (input.status === 'withdrawn') lines.push('Your request was withdrawn. We have not acted on it.');
      if (input.refusals.length) {
        response.refusals = input.refusals.map((x) => ({ item: x.item, ground: x.ground, explanation: explanations.get(x.item) ?? '' }));
        lines.push(input.status === 'refused' ? 'We cannot fulfil your request:' : 'We fulfilled your request except for the following:');
        for (const x of input.refusals) {
          const why = x.ground === 'identity_not_verified' ? 'we did not receive the confirmation code in time' : explanations.get(x.item);
          lines.push(`- ${x.item === '*' ? 'the whole request' : x.item}: ${REFUSAL_GROUND_LABEL[x.ground as RefusalGround]}${why ? ` (${why})` : ''}.`);
        }
        lines.push('', COMPLAINT_NOTICE);
      }
      const f = input.fulfilment;
      if (f && (input.status === 'completed' || input.status === 'partially_completed')) {
        response.effects = f.counts;
        if (f.exportId) {
          const { exp, link } = await svc.packageLink(f.exportId);
          lines.push(
            `Your data is ready: ${dsr.publicBaseUrl}/privacy/packages/${f.exportId}?expires=${link.expires}&sig=${link.sig}`,
            `The link works ${exp.max_downloads} time(s) until ${new Date(exp.expires_at).toISOString()}. The archive holds data.json and one CSV file per table.`,
          );
          response.package = { exportId: f.exportId, expiresAt: new Date(exp.expires_at).toISOString() };
        }
        if (type === 'deletion') {
          const retained = await svc.retainedByLaw();
          lines.push(
            'We erased or anonymized your personal data, revoked your API keys, deleted your login records and removed IP addresses and browser identifiers from your usage records.',
            'The law requires us to keep the following records; they are restricted (used for no other purpose) and erased when the period ends:',
            ...retained.map((k) => `- ${k.category}: ${k.years} years after the end of the calendar year they belong to (${k.basis})`),
            'Your usage records, no longer linked to your name and without IP address or browser, are deleted by our regular expiry once they have been invoiced and reconciled.',
          );
          response.retained = retained;
        }
        if (type === 'restriction') lines.push('We restricted the processing of your data: it is stored and used only for billing and legal obligations.');
        if (type === 'objection') lines.push('We recorded your objection: your data is no longer used for analytics or other processing based on legitimate interests.');
        if (type === 'consent_withdrawal') lines.push('We recorded the withdrawal of your consent; it applies from now on.');
        if (type === 'correction') {
          lines.push(f.fieldsChanged.length ? `We corrected: ${f.fieldsChanged.join(', ')}.` : 'There was nothing to correct.');
          response.fieldsChanged = f.fieldsChanged;
        }
        if (type === 'payload' || type === 'access') {
          const providers = await svc.providersUsed(await svc.findSubject(r.subject_email ?? '', r.account_id));
          lines.push('', PAYLOAD_NOTICE, `Providers: ${providers.length ? providers.join(', ') : 'none (no usage recorded)'}.`);
          response.payload = { retained: false, providers };
        }
      }
      await svc.close(r.id, input.status, input.refusals, response);
      if (r.subject_email) {
        await notify(`dsr:${r.id}:answer`, r.subject_email, `Your privacy request (${ref(r.id)}): ${input.status.replace('_', ' ')}`, lines.join('\n'));
      }
      if (type === 'deletion' && input.status !== 'withdrawn' && input.status !== 'refused') {
        // The answer is out: the request no longer needs the address, nor do the messages we sent.
        await svc.forgetSubjectEmail(r.id, r.subject_email);
      }
    },
  };
}

