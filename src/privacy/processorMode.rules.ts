import { DSR_TYPE_LABEL, type DsrType } from './rights.rules';

/**
 * Processor-mode requests (docs/privacy-requests.md, "Requests about a
 * customer's API traffic"): someone who is not a user of any account (an
 * end-user of a customer's app) asks about data in a customer's API traffic.
 * We process that traffic for the customer, as its processor, and keep none
 * of its content; the customer is the controller who answers. Pure rules: the
 * outcome, and the texts of the answer and of the forward.
 */

/** Bounds of what the person may give (the database holds what passes). */
export const MAX_CUSTOMER_NAME = 200;
export const MAX_CONTACT_EMAIL = 254;

export const PROCESSOR_NOTICE =
  "We process our customers' API traffic as a processor, on their behalf and on their instructions (GDPR art. 28). We never kept its content: prompts, completions and other payload pass through memory only on their way to the model provider. The customer whose app or service you used decides about that data and answers requests about it.";

export type ProcessorOutcome = 'forwarded' | 'customer_not_found' | 'no_contact' | 'not_named';

/** What was found for what the person named: no account, an account without a contact, or one with it. */
export interface NamedCustomer {
  named: boolean;
  account: { id: string; name: string; contact: string | null } | null;
}

export function outcomeOf(c: NamedCustomer): ProcessorOutcome {
  if (!c.named) return 'not_named';
  if (!c.account) return 'customer_not_found';
  return c.account.contact ? 'forwarded' : 'no_contact';
}

/**
 * The answer to the person, stored and emailed. Not found and no contact read
 * alike: the public form must not tell whether an account id or name exists
 * (staff see the difference in the queue). A forward names the customer (the
 * account's own name) but never the contact's address.
 */
export function answerText(outcome: ProcessorOutcome, ref: string, customerName: string | null): string {
  const head = `Your request ${ref} has been received.\n\n${PROCESSOR_NOTICE}\n\n`;
  switch (outcome) {
    case 'forwarded':
      return `${head}We forwarded your request to ${customerName}, the customer you named, with your request's reference, its type and your email address only. They will answer you.`;
    case 'customer_not_found':
    case 'no_contact':
      return `${head}We could not forward your request: we have no customer with a privacy contact matching what you gave. Our privacy team will look at it; you can also ask the company whose app or service you used directly.`;
    case 'not_named':
      return `${head}You did not name the customer, so we forwarded nothing. Ask the company whose app or service you used directly, or file again naming it (its name as you know it, exactly).`;
  }
}

/**
 * The forward to the customer's privacy contact: the reference, the type and
 * the person's contact email, and the date by which we track it. Nothing else
 * the person gave (the customer needs no more to find and answer them, and
 * nothing typed by them can reach the customer's inbox).
 */
export function forwardText(ref: string, type: DsrType, personEmail: string, dueAt: string): { subject: string; body: string } {
  return {
    subject: `Data-subject request ${ref} about your API traffic`,
    body: [
      `A person asked us about data in your API traffic. We process that traffic as your processor and keep none of its content, so the request is yours to answer as controller.`,
      ``,
      `Reference: ${ref}`,
      `Type: ${type} (${DSR_TYPE_LABEL[type]})`,
      `Contact the person at: ${personEmail}`,
      `Answer by: ${dueAt}`,
    ].join('\n'),
  };
}

/** A customer name as the person gave it, compared exactly (after trimming) with accounts.name: never fuzzy. */
export function normalisedName(name: string | undefined): string | undefined {
  const t = name?.trim();
  return t ? t : undefined;
}

/** Why a forward was closed or a contact changed: at most this many characters. */
export const MAX_REASON = 500;

/** C0 and C1 control characters (newlines, ESC...), by code point: a reason is one line that prints safely in a terminal. */
export function hasControl(v: string): boolean {
  return [...v].some((ch) => {
    const c = ch.codePointAt(0)!;
    return c < 0x20 || (c >= 0x7f && c <= 0x9f);
  });
}

/** A forward is overdue when its deadline passed and staff have not closed it. */
export function isOverdue(f: { dueAt: Date | null; closedAt: Date | null }, now: Date): boolean {
  return !!f.dueAt && !f.closedAt && f.dueAt.getTime() <= now.getTime();
}

/**
 * The retry path (the worker's periodic round, `mixroute privacy
 * processor-requests send-queued`) leaves a message this long to the filing's
 * own send, which runs right after the commit, so the two do not race for it.
 */
export const EMAIL_RETRY_AFTER_MS = 60_000;
