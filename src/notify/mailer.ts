import fs from 'node:fs';
import path from 'node:path';
import nodemailer from 'nodemailer';
import type { Config } from '../config';
import type { Db } from '../db/knex';

/**
 * Delivers notification_outbox messages. Enqueueing is idempotent (one row per
 * key), delivery marks the row sent, so a retried activity sends a message at
 * most once more only if the process died between the send and the mark.
 *
 * SMTP (nodemailer) when SMTP_URL is set; otherwise each message becomes a
 * JSON file under DATA_DIR/mailbox, which is the dev and test mailbox.
 *
 * A sent message's body is cleared in the same statement that marks it sent:
 * bodies carry one-time codes and package links, which must not outlive the
 * delivery in the database (recipient, subject and times stay as the record).
 */
export interface Mailer {
  deliver(db: Db, keys: string[]): Promise<number>;
}

export function createMailer(mail: Config['mail']): Mailer {
  const smtp = mail.smtpUrl ? nodemailer.createTransport(mail.smtpUrl) : null;
  return {
    async deliver(db, keys) {
      const pending = await db('notification_outbox').whereIn('idempotency_key', keys).whereNull('sent_at').orderBy('id');
      for (const m of pending) {
        if (smtp) {
          await smtp.sendMail({ from: mail.from, to: m.recipient, subject: m.subject, text: m.body });
        } else {
          fs.mkdirSync(mail.mailboxDir, { recursive: true });
          fs.writeFileSync(path.join(mail.mailboxDir, `${String(m.id).padStart(8, '0')}.json`), JSON.stringify({ to: m.recipient, subject: m.subject, body: m.body, key: m.idempotency_key }, null, 2));
        }
        await db('notification_outbox').where({ id: m.id }).update({ sent_at: db.fn.now(), body: '' });
      }
      return pending.length;
    },
  };
}
