import type { AccountsService } from '../accounts/accounts.service';
import { NotFoundError, ValidationError } from '../errors';
import type { CheckoutResult, TopUpCheckoutService } from '../ledger/checkout.service';
import type { LedgerService } from '../ledger/ledger.service';
import type { InvoiceDocument } from '../invoicing/render';
import type { PaymentState } from '../invoicing/paymentStatus.rules';
import { customerVatIdProblem } from '../invoicing/tax.rules';
import type { CustomerSession } from './customerConsole.service';

/**
 * The customer console's Billing page (issue 26): the session's account's
 * balance, ledger, invoices and credit notes, billing details, top-ups and
 * invoice payments by hosted checkout. Every call takes the account from the
 * session; an id from the request (an invoice) is only ever looked up within
 * that account, and another account's answers 404 like one that does not exist.
 */

/** What the Billing page needs of the invoicing, checkout, ledger and accounts services (the admin app passes them). */
export interface CustomerBillingDeps {
  invoices: {
    /** The account's latest `limit` issued invoices and credit notes, newest period first (one query with LIMIT). */
    latestOfAccount(accountId: string, limit: number): Promise<InvoiceView[]>;
    get(id: string): Promise<InvoiceView>;
    document(id: string): Promise<InvoiceDocument>;
  };
  /** Renders an invoice document as a PDF (src/invoicing/render.ts). */
  renderPdf(doc: InvoiceDocument): Promise<Buffer>;
  checkout: Pick<TopUpCheckoutService, 'createTopUpCheckout' | 'enabled'> & { createInvoiceCheckout(raw: unknown): Promise<CheckoutResult> };
  ledger: Pick<LedgerService, 'balance'>;
  /** updateAccountDetails: the staff schema's checks and the one write of billing details. */
  accounts: Pick<AccountsService, 'getAccount' | 'updateAccountDetails'>;
  /** Top-up bounds (CHECKOUT_MIN_AMOUNT, CHECKOUT_MAX_AMOUNT), shown next to the form. */
  limits: { minAmount: string; maxAmount: string };
}

interface InvoiceView {
  id: string;
  kind: string;
  number: string | null;
  status: string;
  accountId: string;
  period: string;
  plan: string;
  currency: string;
  dueDate: string | null;
  totals: { total: string };
  payment: unknown;
}

/** Invoices shown on the page (newest periods first); ledger entries shown. */
export const INVOICES_SHOWN = 24;
export const ENTRIES_SHOWN = 50;
/** Longest amount text looked at; the checkout's rules say what is wrong with a shorter one. */
const MAX_AMOUNT_TEXT = 32;
/**
 * Longest billing-details value looked at (an email address's limit): the
 * accounts service's schema says what is wrong with a shorter one, and bounds
 * every field but the email address tighter.
 */
export const MAX_DETAIL_TEXT = 320;
/** The form's fields and the accounts service's names for them. */
const DETAIL_FIELDS = { name: 'name', vat_id: 'vatId', billing_email: 'billingEmail', country: 'country' } as const;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const SUCCESS_PATH = '/app/billing?checkout=success';
const CANCEL_PATH = '/app/billing?checkout=cancelled';

const notFound = () => new NotFoundError('Invoice not found.');
const actorOf = (s: Pick<CustomerSession, 'userId'>) => `customer:${s.userId}`;

export function customerBillingService(deps: CustomerBillingDeps) {
  /** One invoice of the session's account that was issued (not a draft); anything else is "not found". */
  async function ownInvoice(s: Pick<CustomerSession, 'accountId'>, id: unknown): Promise<InvoiceView> {
    if (typeof id !== 'string' || !UUID.test(id)) throw notFound();
    let inv: InvoiceView;
    try {
      inv = await deps.invoices.get(id.toLowerCase());
    } catch (err) {
      if (err instanceof NotFoundError) throw notFound();
      throw err;
    }
    if (inv.accountId !== s.accountId || inv.status === 'draft') throw notFound();
    return inv;
  }

  return {
    cardPayments: deps.checkout.enabled,
    limits: deps.limits,

    /** Everything the Billing page shows, for the session's account. */
    async page(s: Pick<CustomerSession, 'accountId'>) {
      const account = await deps.accounts.getAccount({ id: s.accountId });
      const bal = await deps.ledger.balance({ accountId: s.accountId, limit: ENTRIES_SHOWN });
      // One more than shown, to know whether there are older ones.
      const latest = (await deps.invoices.latestOfAccount(s.accountId, INVOICES_SHOWN + 1)).filter((i) => i.accountId === s.accountId && i.status !== 'draft');
      const invoices = latest.slice(0, INVOICES_SHOWN).map((i) => {
        const payment = i.payment as PaymentState | null;
        return {
          id: i.id,
          kind: i.kind as 'invoice' | 'credit_note',
          number: i.number,
          period: i.period,
          status: i.status,
          currency: i.currency,
          total: i.totals.total,
          dueDate: i.dueDate,
          paymentStatus: payment?.status ?? null,
          amountPaid: payment?.amountPaid ?? null,
          payable: i.kind === 'invoice' && i.plan === 'postpaid' && i.status === 'finalized' && payment !== null && ['open', 'partially_paid', 'overdue'].includes(payment.status),
        };
      });
      return {
        account: { name: account.name, vatId: account.vatId, billingEmail: account.billingEmail, country: account.country, currency: account.currency, plan: account.plan },
        balance: bal.balance,
        currency: bal.currency,
        entries: bal.entries.map((e) => ({ kind: e.kind, amount: e.amount, balanceAfter: e.balanceAfter, createdAt: e.createdAt })),
        moreEntries: bal.nextPage !== null,
        invoices,
        moreInvoices: latest.length > INVOICES_SHOWN,
      };
    },

    /**
     * Saves the billing details form (name, vat_id, billing_email, country) for
     * the session's account, whatever else the form holds. Each field is sent
     * with the form: an empty optional field clears it, an empty name or country is refused.
     * The checks are the accounts service's (the staff schema's), not repeated here.
     */
    async saveDetails(s: Pick<CustomerSession, 'accountId' | 'userId'>, form: Record<string, unknown>) {
      const details: Record<string, string | null> = {};
      for (const [field, key] of Object.entries(DETAIL_FIELDS)) {
        const v = form[field];
        if (v === undefined) continue;
        // Refusals name the field as the accounts service does, so the page labels them alike.
        if (typeof v !== 'string') throw new ValidationError(`invalid input: ${key}: give it once`, [{ field: key, message: 'give it once' }]);
        if (v.length > MAX_DETAIL_TEXT) throw new ValidationError(`invalid input: ${key}: at most ${MAX_DETAIL_TEXT} characters`, [{ field: key, message: `at most ${MAX_DETAIL_TEXT} characters` }]);
        // The name and the country cannot be cleared: invoices need both (the country sets the tax).
        details[key] = key === 'name' || key === 'country' || v.trim() !== '' ? v : null;
      }
      // Beyond the staff checks: a VAT id gives reverse charge at 0 %, so one a customer types must look like their country's.
      if (details.vatId) {
        const country = (details.country ?? (await deps.accounts.getAccount({ id: s.accountId })).country ?? '').trim().toUpperCase();
        const problem = customerVatIdProblem(details.vatId, country);
        if (problem) throw new ValidationError(`invalid input: vatId: ${problem}`, [{ field: 'vatId', message: problem }]);
      }
      return deps.accounts.updateAccountDetails({ ...details, id: s.accountId }, actorOf(s));
    },

    /** A top-up by card for the session's account: the provider's page to send the browser to. */
    async topUp(s: Pick<CustomerSession, 'accountId' | 'userId'>, amount: unknown): Promise<{ url: string }> {
      if (typeof amount !== 'string' || amount.length > MAX_AMOUNT_TEXT) throw new ValidationError('invalid input: amount: must be a positive decimal string', [{ field: 'amount', message: 'must be a positive decimal string' }]);
      const r = await deps.checkout.createTopUpCheckout({ accountId: s.accountId, amount: amount.trim(), successUrl: SUCCESS_PATH, cancelUrl: CANCEL_PATH, actor: actorOf(s) });
      return { url: r.url };
    },

    /** Pays what is left of one of the session's account's invoices by card. */
    async payInvoice(s: Pick<CustomerSession, 'accountId' | 'userId'>, invoiceId: unknown): Promise<{ url: string }> {
      const inv = await ownInvoice(s, invoiceId);
      try {
        const r = await deps.checkout.createInvoiceCheckout({ accountId: s.accountId, invoiceId: inv.id, successUrl: SUCCESS_PATH, cancelUrl: CANCEL_PATH, actor: actorOf(s) });
        return { url: r.url };
      } catch (err) {
        if (err instanceof NotFoundError) throw notFound();
        throw err;
      }
    },

    /** The PDF of one of the session's account's invoices or credit notes, with its file name. */
    async invoicePdf(s: Pick<CustomerSession, 'accountId'>, id: unknown): Promise<{ pdf: Buffer; filename: string }> {
      const inv = await ownInvoice(s, id);
      const pdf = await deps.renderPdf(await deps.invoices.document(inv.id));
      return { pdf, filename: `${(inv.number ?? inv.id).replace(/[^A-Za-z0-9._-]/g, '_')}.pdf` };
    },
  };
}

export type CustomerBillingService = ReturnType<typeof customerBillingService>;
