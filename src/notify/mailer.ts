import fs from 'node:fs';
import path from 'node:path';
import nodemailer from 'nodemailer';
import type { Config } from '../config';

/**
 * Sends one notification_outbox message. The caller reads the outbox and
 * marks each message sent right after it went (see deliver in
 * src/privacy/fulfilment.service.ts), so a retried activity sends a message
 * at most once more only if the process died between the send and the mark.
 *
 * SMTP (nodemailer) when SMTP_URL is set; otherwise each message becomes a
 * JSON file under DATA_DIR/mailbox, which is the dev and test mailbox.
 */
export interface MailMessage {
  /** The outbox row's id: names the file in the dev mailbox. */
  id: string | number;
  idempotency_key: string;
  recipient: string;
  subject: string;
  body: string;
}

export interface Mailer {
  send(m: MailMessage): Promise<void>;
}

export function createMailer(mail: Config['mail']): Mailer {
  const smtp = mail.smtpUrl ? nodemailer.createTransport(mail.smtpUrl) : null;
  return {
    async send(m) {
      if (smtp) {
        await smtp.sendMail({ from: mail.from, to: m.recipient, subject: m.subject, text: m.body });
      } else {
        fs.mkdirSync(mail.mailboxDir, { recursive: true });
        fs.writeFileSync(path.join(mail.mailboxDir, `${String(m.id).padStart(8, '0')}.json`), JSON.stringify({ to: m.recipient, subject: m.subject, body: m.body, key: m.idempotency_key }, null, 2));
      }
    },
  };
}
