import type { z } from 'zod';
import type { StaffService } from '../staff/staff.service';
import type { StaffRole } from '../staff/staff.rules';
import {
  addModelInput,
  addPriceInput,
  addProviderInput,
  createAccountInput,
  createKeyInput,
  createStaffTokenInput,
  createUserInput,
  listInput,
  setFallbacksInput,
  createTopUpInput,
  refundInput,
  adjustmentInput,
} from '../staff/schemas';
import type { AccountsService } from '../accounts/accounts.service';
import { meteringQuarantineInput, type LedgerService } from '../ledger/ledger.service';

import type { InvoicingService } from '../invoicing/invoicing.service';
import { startRunInput } from '../invoicing/invoiceRuns.service';
import { setTaxRateInput } from '../invoicing/taxRates.service';
import { agingInput, recordPaymentBody, writeOffBody } from '../invoicing/payments.service';
import { accountingExportInput } from '../invoicing/accountingExport.service';
import { suspensionBody, type SuspensionService } from '../invoicing/suspension.service';
import { clearRegionPolicyBody, setRegionPolicyBody, type RegionPolicyService } from '../accounts/regionPolicy.service';
import { validate } from '../shared/validate';
import { agingCsv, type AgingReport } from '../invoicing/paymentStatus.rules';
import { DependencyUnavailableError } from '../errors';
import { startReconcileInput, type ReconciliationService } from '../reconciliation/reconciliation.service';
import { createDsrInput, extendInput, refuseInput, verifyInput, type PrivacyService } from '../privacy/privacy.service';
import { closeForwardBody, listProcessorRequestsInput, processorRequestInput, setPrivacyContactBody, type ProcessorModeService } from '../privacy/processorMode.service';
import { addHoldInput, releaseHoldInput, setPolicyInput, type RetentionService } from '../retention/retention.service';
import { alertSettingsInput, listEventsInput, type AccountEventsService } from '../notifications/events.service';
import { registerEndpointBody, type WebhooksService } from '../webhooks/webhooks.service';
import { pauseDunningBody, type DunningOperations } from '../invoicing/dunning.service';
import { createActivityInput, createRecipientInput, listChangesInput, updateActivityInput, updateRecipientInput, type RegisterService } from '../register/register.service';
import { recordOfProcessingInput, type RopaService } from '../register/ropa.service';
import {
  changeNoticesInput,
  decideInput,
  listChangesInput as listSubprocessorChangesInput,
  setAgreementInput,
  type SubprocessorService,
} from '../register/subprocessor.service';
import { publishInput as publishPolicyVersionInput, type PolicyVersionsService } from '../policyVersions/policyVersions.service';

export type AdminOperations = AccountsService &
  LedgerService &
  Pick<StaffService, 'createStaffToken' | 'revokeStaffToken'> & {
    invoices: InvoicingService['invoices'];
    runs: InvoicingService['runs'];
    taxRates: InvoicingService['taxRates'];
    payments: InvoicingService['payments'];
    accountingExport: InvoicingService['accountingExport'];
    suspension: SuspensionService;
    regionPolicy: RegionPolicyService;
    render: { pdf: (id: string) => Promise<Buffer>; html: (id: string) => Promise<string> };
    reconciliation: ReconciliationService;
    dsr: PrivacyService;
    processorMode: ProcessorModeService;
    retention: RetentionService;
    alerts: AccountEventsService;
    webhooks: WebhooksService;
    dunning: DunningOperations;
    register: RegisterService;
    subprocessors: SubprocessorService;
    ropa: RopaService;
    policyVersions: PolicyVersionsService;
  };

const needRuns = (ops: AdminOperations) => {
  if (!ops.runs) throw new DependencyUnavailableError('invoice runs need Temporal');
  return ops.runs;
};

/** A route result that is sent as is (a PDF or an HTML page), not as JSON. */
export interface RawResult {
  raw: true;
  contentType: string;
  /** An async iterable (a long CSV) is streamed as it is produced. */
  body: Buffer | string | AsyncIterable<string>;
  filename?: string;
}

/**
 * Every admin route, declared once with the roles it admits. The app mounts
 * them, the OpenAPI document is generated from them, and a test walks them to
 * prove each refuses no token (401) and every other role (403).
 */
export interface RouteContext {
  params: Record<string, string>;
  query: Record<string, unknown>;
  body: unknown;
  /** Who is acting: 'staff:<token id>'; recorded on ledger entries. */
  actor: string;
}

export interface AdminRoute {
  method: 'get' | 'post' | 'delete';
  path: string;
  roles: readonly StaffRole[];
  summary: string;
  tag: 'billing' | 'compliance' | 'admin';
  body?: z.ZodType;
  /**
   * How the body is read (after the role check): 'json' when `body` is set
   * unless said otherwise; a route with neither reads no body at all.
   */
  bodyType?: 'json' | 'csv';
  query?: z.ZodType;
  status?: number;
  /** The media type of a success that is not JSON (the OpenAPI document says so). */
  responseType?: string;
  handler: (ops: AdminOperations, ctx: RouteContext) => Promise<unknown>;
}

const BILLING: readonly StaffRole[] = ['billing', 'admin'];
const ADMIN_ONLY: readonly StaffRole[] = ['admin'];
const COMPLIANCE: readonly StaffRole[] = ['compliance', 'admin'];

export const adminRoutes: readonly AdminRoute[] = [
  {
    method: 'post', path: '/billing/accounts', roles: BILLING, tag: 'billing', status: 201,
    summary: 'Create a customer account', body: createAccountInput,
    handler: (ops, { body }) => ops.createAccount(body),
  },
  {
    method: 'get', path: '/billing/accounts', roles: BILLING, tag: 'billing',
    summary: 'List accounts (ordered by id; page with ?after=<last id>)', query: listInput,
    handler: (ops, { query }) => ops.listAccounts(query),
  },
  {
    method: 'get', path: '/billing/accounts/:id', roles: BILLING, tag: 'billing',
    summary: 'Show one account, with its suspension (`suspension`: suspended, the suspension in force, the history)',
    handler: async (ops, { params }) => ({ ...(await ops.getAccount({ id: params.id })), suspension: await ops.suspension.status(params.id) }),
  },
  {
    method: 'post', path: '/billing/accounts/:id/suspend', roles: BILLING, tag: 'billing', body: suspensionBody,
    summary: 'Suspend an account by hand ({"reason"}): the gateway refuses its model calls (account_suspended) within seconds; lifted by staff only',
    handler: (ops, { params, body, actor }) => ops.suspension.suspend({ accountId: params.id, reason: validate(suspensionBody, body).reason, actor }),
  },
  {
    method: 'post', path: '/billing/accounts/:id/reinstate', roles: BILLING, tag: 'billing', body: suspensionBody,
    summary: 'Reinstate a suspended account ({"reason"}): active again within seconds on every gateway instance',
    handler: (ops, { params, body, actor }) => ops.suspension.reinstate({ accountId: params.id, reason: validate(suspensionBody, body).reason, actor }),
  },
  // Region policies: set and cleared by billing or admin staff on the customer's request; compliance staff read them.
  {
    method: 'get', path: '/billing/accounts/:id/region-policy', roles: [...BILLING, 'compliance'], tag: 'billing',
    summary: "An account's region policy (null: none, every route is used) and its last 20 changes with who and why",
    handler: (ops, { params }) => ops.regionPolicy.get(params.id),
  },
  {
    method: 'post', path: '/billing/accounts/:id/region-policy', roles: BILLING, tag: 'billing', body: setRegionPolicyBody,
    summary:
      'Limit an account to providers processing only in allowed countries ({"allow": "EEA" | "DE,FR" | [...], "reason"}; audited): within seconds the gateway routes it only there, fallbacks included, and refuses a model with no such route (region_policy_no_route)',
    handler: (ops, { params, body, actor }) => {
      const b = validate(setRegionPolicyBody, body);
      return ops.regionPolicy.set({ accountId: params.id, allow: b.allow, reason: b.reason, actor });
    },
  },
  {
    method: 'delete', path: '/billing/accounts/:id/region-policy', roles: BILLING, tag: 'billing', body: clearRegionPolicyBody,
    summary: 'Remove an account\'s region policy ({"reason"}; audited): every route is used again within seconds',
    handler: (ops, { params, body, actor }) => ops.regionPolicy.clear({ accountId: params.id, reason: validate(clearRegionPolicyBody, body).reason, actor }),
  },
  // The customer's privacy contact: the one address processor-mode requests about its API traffic are forwarded to.
  {
    method: 'get', path: '/billing/accounts/:id/privacy-contact', roles: [...BILLING, 'compliance'], tag: 'billing',
    summary: "An account's privacy contact (null: none) with who set it, why and when, and its changes (who, why, before, after, when), newest first",
    handler: (ops, { params }) => ops.processorMode.getContact(params.id!),
  },
  {
    method: 'post', path: '/billing/accounts/:id/privacy-contact', roles: BILLING, tag: 'billing', body: setPrivacyContactBody,
    summary: 'Set an account\'s privacy contact ({"email", "reason"}; who, why and when are kept): processor-mode requests naming the customer are forwarded there',
    handler: (ops, { params, body, actor }) => ops.processorMode.setContact(params.id!, body, actor),
  },
  // The customer's data-processing agreement: with one, the account is told of each new sub-processor first (docs/processing-register.md#sub-processor-changes).
  {
    method: 'get', path: '/billing/accounts/:id/processing-agreement', roles: [...BILLING, 'compliance'], tag: 'billing',
    summary: "An account's data-processing agreement (null: none) with who recorded it, why and when",
    handler: (ops, { params }) => ops.subprocessors.agreements.get(params.id!),
  },
  {
    method: 'post', path: '/billing/accounts/:id/processing-agreement', roles: COMPLIANCE, tag: 'compliance', body: setAgreementInput,
    summary: 'Record or replace an account\'s data-processing agreement ({"agreementRef", "signedOn": "YYYY-MM-DD", "reason"}): from now on the account is notified of, and held back from, each new sub-processor',
    handler: (ops, { params, body, actor }) => ops.subprocessors.agreements.set(params.id!, body, actor),
  },
  {
    method: 'get', path: '/billing/accounts/:id/subprocessor-notices', roles: [...BILLING, 'compliance'], tag: 'billing',
    summary: "An account's sub-processor notices, newest first: the change, its status (pending, accepted, objected, effective) and whether the recipient is held back",
    handler: (ops, { params }) => ops.subprocessors.notices.ofAccount(params.id!),
  },
  {
    method: 'post', path: '/billing/users', roles: BILLING, tag: 'billing', status: 201,
    summary: 'Add a person to an account', body: createUserInput,
    handler: (ops, { body }) => ops.createUser(body),
  },
  {
    method: 'post', path: '/billing/keys', roles: BILLING, tag: 'billing', status: 201,
    summary: 'Create an API key (the key is in this response only); kind "management" makes a key that manages the account\'s keys and makes no model calls', body: createKeyInput,
    handler: (ops, { body }) => ops.createKey(body),
  },
  {
    method: 'get', path: '/billing/accounts/:id/keys', roles: BILLING, tag: 'billing',
    summary: "List an account's API keys (metadata only; page with ?limit=&after=<last key id>)",
    handler: (ops, { params, query }) => ops.listKeys({ ...query, id: params.id }),
  },
  {
    method: 'post', path: '/billing/keys/:id/revoke', roles: BILLING, tag: 'billing',
    summary: 'Revoke an API key (idempotent)',
    handler: (ops, { params }) => ops.revokeKey({ id: params.id }),
  },
  {
    // Providers, model routes and fallbacks decide where customers' prompts and
    // a provider credential are sent: admin only. Billing staff set prices.
    method: 'post', path: '/billing/providers', roles: ADMIN_ONLY, tag: 'admin', status: 201,
    summary: 'Add an upstream provider (apiKeyEnv: a PROVIDER_<NAME>_API_KEY variable, default from the name)', body: addProviderInput,
    handler: (ops, { body }) => ops.addProvider(body),
  },
  {
    method: 'get', path: '/billing/providers', roles: BILLING, tag: 'billing',
    summary: 'List upstream providers (page with ?limit=&after=<last name>)',
    handler: (ops, { query }) => ops.listProviders(query),
  },
  {
    method: 'post', path: '/billing/models', roles: ADMIN_ONLY, tag: 'admin', status: 201,
    summary: 'Add a model (a route to a provider) with its price, or a new price version of an existing model', body: addModelInput,
    handler: (ops, { body }) => ops.addModel(body),
  },
  {
    method: 'post', path: '/billing/models/prices', roles: BILLING, tag: 'billing', status: 201,
    summary: 'Add a price version of an existing model (its route stays as it is)', body: addPriceInput,
    handler: (ops, { body }) => ops.addPrice(body),
  },
  {
    method: 'post', path: '/billing/models/fallbacks', roles: ADMIN_ONLY, tag: 'admin',
    summary: "Replace a model's ordered fallback routes", body: setFallbacksInput,
    handler: (ops, { body }) => ops.setModelFallbacks(body),
  },
  {
    method: 'get', path: '/billing/models', roles: BILLING, tag: 'billing',
    summary: 'List models with the price in force and the price history (page with ?limit=&after=<last name>)',
    handler: (ops, { query }) => ops.listModels(query),
  },
  {
    method: 'post', path: '/billing/topups', roles: BILLING, tag: 'billing', status: 201,
    summary: 'Record a top-up or grant with a reference (credited once per reference)', body: createTopUpInput,
    handler: (ops, { body, actor }) => ops.createTopUp(body, actor),
  },
  {
    method: 'post', path: '/billing/refunds', roles: BILLING, tag: 'billing', status: 201,
    summary: 'Refund credit to the customer (needs a reason; once per reference)', body: refundInput,
    handler: (ops, { body, actor }) => ops.refund(body, actor),
  },
  {
    method: 'post', path: '/billing/adjustments', roles: BILLING, tag: 'billing', status: 201,
    summary: 'Post a manual adjustment, either sign (needs a reason; once per reference)', body: adjustmentInput,
    handler: (ops, { body, actor }) => ops.adjust(body, actor),
  },
  {
    method: 'post', path: '/billing/ledger/:id/reverse', roles: BILLING, tag: 'billing', status: 201, bodyType: 'json',
    summary: 'Reverse a ledger entry (needs a reason; an entry is reversed at most once)',
    handler: (ops, { params, body, actor }) => ops.reverse({ entryId: params.id, reason: (body as { reason?: unknown })?.reason }, actor),
  },
  {
    method: 'get', path: '/billing/accounts/:id/alerts', roles: BILLING, tag: 'billing',
    summary: "An account's alert settings: low-balance thresholds and whether alert emails go to its billing address",
    handler: (ops, { params }) => ops.alerts.getAlertSettings({ accountId: params.id }),
  },
  {
    method: 'post', path: '/billing/accounts/:id/alerts', roles: BILLING, tag: 'billing', body: alertSettingsInput,
    summary: "Set an account's low-balance thresholds (at most 5 amounts; replaces the list) and/or alert emails on or off",
    handler: (ops, { params, body }) => ops.alerts.setAlertSettings({ accountId: params.id, settings: body }),
  },
  {
    method: 'get', path: '/billing/accounts/:id/events', roles: BILLING, tag: 'billing', query: listEventsInput,
    summary: "An account's events (balance, key limit, top-up, invoice), newest first (page with ?before=<nextPage.before>; ?type=)",
    handler: (ops, { params, query }) => ops.alerts.listEvents({ accountId: params.id, query }),
  },
  {
    method: 'get', path: '/billing/accounts/:id/webhooks', roles: BILLING, tag: 'billing',
    summary: "An account's webhook endpoints (URL, events, status, failures; never the secret)",
    handler: (ops, { params }) => ops.webhooks.listEndpoints({ accountId: params.id }),
  },
  {
    method: 'post', path: '/billing/accounts/:id/webhooks', roles: BILLING, tag: 'billing', status: 201, body: registerEndpointBody,
    summary: 'Register a webhook endpoint (url, events); its signing secret is in this response only',
    handler: (ops, { params, body }) => ops.webhooks.registerEndpoint({ ...(body as object), accountId: params.id }),
  },
  {
    method: 'get', path: '/billing/webhooks/:id', roles: BILLING, tag: 'billing',
    summary: 'Show one webhook endpoint',
    handler: (ops, { params }) => ops.webhooks.getEndpoint({ id: params.id }),
  },
  {
    method: 'post', path: '/billing/webhooks/:id/disable', roles: BILLING, tag: 'billing',
    summary: 'Disable a webhook endpoint (idempotent; pending deliveries end as failed)',
    handler: (ops, { params }) => ops.webhooks.disableEndpoint({ id: params.id }, 'staff'),
  },
  {
    method: 'post', path: '/billing/webhooks/:id/enable', roles: BILLING, tag: 'billing',
    summary: 'Enable a webhook endpoint again, its failure count reset (idempotent)',
    handler: (ops, { params }) => ops.webhooks.enableEndpoint({ id: params.id }),
  },
  {
    method: 'post', path: '/billing/webhooks/:id/delete', roles: BILLING, tag: 'billing',
    summary: 'Delete a webhook endpoint and its delivery log',
    handler: (ops, { params }) => ops.webhooks.deleteEndpoint({ id: params.id }),
  },
  {
    method: 'get', path: '/billing/accounts/:id/webhook-deliveries', roles: BILLING, tag: 'billing',
    summary: "An account's webhook delivery log, newest first: status, attempts, last response code, never a body (?endpointId=&status=&limit=; page with ?before=<nextCursor>)",
    handler: (ops, { params, query }) => ops.webhooks.listDeliveries({ ...query, accountId: params.id }),
  },
  {
    method: 'get', path: '/billing/webhook-deliveries/:id', roles: BILLING, tag: 'billing',
    summary: 'Show one webhook delivery',
    handler: (ops, { params }) => ops.webhooks.getDelivery({ id: params.id }),
  },
  {
    method: 'post', path: '/billing/webhook-deliveries/:id/redeliver', roles: BILLING, tag: 'billing',
    summary: 'Send a finished webhook delivery again (a pending one is already being tried: unchanged)',
    handler: (ops, { params }) => ops.webhooks.redeliver({ id: params.id }),
  },
  {
    method: 'get', path: '/billing/accounts/:id/balance', roles: BILLING, tag: 'billing',
    summary: 'Balance, holds, spendable credit, recent ledger entries (page with ?before=<entry id>) and unsettled usage',
    handler: (ops, { params, query }) => ops.balance({ accountId: params.id, ...query }),
  },
  {
    method: 'get', path: '/billing/metering-quarantine', roles: BILLING, tag: 'billing',
    summary: 'Metering records PostgreSQL refused for a data reason, set aside (newest first; page with ?before=<id>; ?all=true includes resolved)',
    query: meteringQuarantineInput,
    handler: (ops, { query }) => ops.meteringQuarantine(query),
  },
  {
    method: 'post', path: '/billing/tax-rates', roles: BILLING, tag: 'billing', status: 201,
    summary: 'Set a tax rate for a country from a date (replaces the rate with the same start)', body: setTaxRateInput,
    handler: (ops, { body }) => ops.taxRates.set(body),
  },
  {
    method: 'get', path: '/billing/tax-rates', roles: BILLING, tag: 'billing',
    summary: 'List tax rates (page with ?limit=&after=<COUNTRY:effectiveFrom>)',
    handler: (ops, { query }) => ops.taxRates.list(query),
  },
  {
    method: 'post', path: '/billing/invoice-runs', roles: BILLING, tag: 'billing', status: 202,
    summary: 'Start the invoice run of a period (or get the one that exists); dryRun computes without writing', body: startRunInput,
    handler: (ops, { body }) => needRuns(ops).start(body),
  },
  {
    method: 'get', path: '/billing/invoice-runs/:period', roles: BILLING, tag: 'billing',
    summary: "An invoice run's live progress: total, done, failed with reasons, skipped, totals",
    handler: (ops, { params }) => needRuns(ops).status({ period: params.period }),
  },
  {
    method: 'get', path: '/billing/invoices', roles: BILLING, tag: 'billing',
    summary: 'List invoices and credit notes (?period=YYYY-MM&accountId=...)',
    handler: (ops, { query }) => ops.invoices.list(query),
  },
  {
    method: 'get', path: '/billing/invoices/:id.pdf', roles: BILLING, tag: 'billing',
    summary: 'Download an invoice as PDF',
    handler: async (ops, { params }) => ({ raw: true, contentType: 'application/pdf', body: await ops.render.pdf(params.id!), filename: `${params.id}.pdf` }) satisfies RawResult,
  },
  {
    method: 'get', path: '/billing/invoices/:id.html', roles: BILLING, tag: 'billing',
    summary: 'An invoice as an HTML page',
    handler: async (ops, { params }) => ({ raw: true, contentType: 'text/html; charset=utf-8', body: await ops.render.html(params.id!) }) satisfies RawResult,
  },
  {
    method: 'get', path: '/billing/invoices/:id', roles: BILLING, tag: 'billing',
    summary: 'An invoice or credit note with its lines',
    handler: (ops, { params }) => ops.invoices.get(params.id!),
  },
  {
    method: 'post', path: '/billing/invoices/:id/void', roles: BILLING, tag: 'billing', status: 201, bodyType: 'json',
    summary: 'Void a finalized invoice with a credit note (needs a reason)',
    handler: (ops, { params, body, actor }) => ops.invoices.void({ id: params.id, reason: (body as { reason?: unknown })?.reason }, actor),
  },
  {
    method: 'get', path: '/billing/invoices/:id/payments', roles: BILLING, tag: 'billing',
    summary: "A postpaid invoice's payment status, amount paid and outstanding, its payment applications and its write-off",
    handler: (ops, { params }) => ops.payments.get(params.id!),
  },
  {
    method: 'post', path: '/billing/invoices/:id/payments', roles: BILLING, tag: 'billing', status: 201, body: recordPaymentBody,
    summary: 'Record a bank transfer against a postpaid invoice ({"amount","paidOn","reference"}); once per reference; the part above what is due is credited to the account',
    handler: (ops, { params, body, actor }) => ops.payments.recordPayment(params.id!, body, actor),
  },
  {
    method: 'post', path: '/billing/invoices/:id/write-off', roles: BILLING, tag: 'billing', status: 201, body: writeOffBody,
    summary: 'Write off what is outstanding on a postpaid invoice (needs a reason); it becomes uncollectible',
    handler: (ops, { params, body, actor }) => ops.payments.writeOff(params.id!, body, actor),
  },
  {
    method: 'get', path: '/billing/receivables/aging', roles: BILLING, tag: 'billing', query: agingInput,
    summary: 'Receivables aging (current, 1-30, 31-60, 61-90, over 90 days) in total and per account (?asOf=YYYY-MM-DD&accountId=&format=json|csv)',
    handler: async (ops, { query }) => {
      const report: AgingReport = await ops.payments.aging(query);
      if ((query as { format?: unknown }).format !== 'csv') return report;
      return { raw: true, contentType: 'text/csv; charset=utf-8', body: agingCsv(report), filename: `aging-${report.asOf}.csv` } satisfies RawResult;
    },
  },
  {
    method: 'get', path: '/billing/exports/accounting', roles: BILLING, tag: 'billing', query: accountingExportInput, responseType: 'text/csv',
    summary: "The accountants' export, text/csv: invoices and credit notes issued, payment applications paid and write-offs made in a range of days (?from=YYYY-MM-DD&to=YYYY-MM-DD, both included, at most 366 days; or ?period=YYYY-MM)",
    handler: async (ops, { query }) => {
      const exp = await ops.accountingExport.csv(query);
      return { raw: true, contentType: 'text/csv; charset=utf-8', body: exp.chunks, filename: exp.filename } satisfies RawResult;
    },
  },
  {
    method: 'get', path: '/billing/accounts/:id/dunning', roles: BILLING, tag: 'billing',
    summary: "An account's dunning: its pause, its suspension, and per invoice (the latest 24) the steps sent and the steps to come",
    handler: (ops, { params }) => ops.dunning.account(params.id),
  },
  {
    method: 'post', path: '/billing/accounts/:id/dunning/pause', roles: BILLING, tag: 'billing', body: pauseDunningBody,
    summary: 'Pause dunning for an account ({"reason"}, 3-500 characters; audited): no reminder or suspension until resumed; pausing a paused account returns its pause',
    handler: (ops, { params, body, actor }) => ops.dunning.pause(params.id, body, actor),
  },
  {
    method: 'post', path: '/billing/accounts/:id/dunning/resume', roles: BILLING, tag: 'billing',
    summary: "Resume an account's dunning (audited); steps that came due while paused run now",
    handler: (ops, { params, actor }) => ops.dunning.resume(params.id, actor),
  },
  {
    method: 'post', path: '/billing/reconciliations', roles: BILLING, tag: 'billing', status: 202,
    summary: 'Reconcile a UTC day ({"day":"YYYY-MM-DD"}) or a month ({"period":"YYYY-MM"}); returns the report id at once (or the run already going)',
    body: startReconcileInput,
    handler: (ops, { body, actor }) => ops.reconciliation.start(body, actor),
  },
  {
    method: 'get', path: '/billing/reconciliation-reports', roles: BILLING, tag: 'billing',
    summary: 'List reconciliation reports, newest first (?day=&period=&verdict=&limit=&before=)',
    handler: (ops, { query }) => ops.reconciliation.list(query),
  },
  {
    method: 'get', path: '/billing/reconciliation-reports/:id', roles: BILLING, tag: 'billing',
    summary: 'A reconciliation report with its discrepancies (?resolution=needs_attention|repaired&limit=&after=)',
    handler: (ops, { params, query }) => ops.reconciliation.get({ ...query, id: params.id }),
  },
  {
    method: 'post', path: '/billing/provider-statements', roles: BILLING, tag: 'billing', status: 201, bodyType: 'csv',
    summary: "Import a provider's usage statement (?provider=NAME, body text/csv: day,model,input_tokens,cached_tokens,output_tokens,cost[,currency])",
    handler: (ops, { query, body, actor }) => ops.reconciliation.importProviderStatement({ provider: query.provider, csv: typeof body === 'string' ? body : '' }, actor),
  },
  {
    method: 'post', path: '/privacy/dsr', roles: COMPLIANCE, tag: 'compliance', status: 201,
    summary: 'Take a data-subject request (type, email, optional accountId, jurisdiction, changes for a correction); starts dsr:{id}', body: createDsrInput,
    handler: (ops, { body, actor }) => ops.dsr.create(body, actor),
  },
  {
    method: 'post', path: '/privacy/processor-dsr', roles: COMPLIANCE, tag: 'compliance', status: 201,
    summary: "Take a request from someone who is not a user, about a customer's API traffic (type, email, jurisdiction, customerAccountId or customerName); answered at once, forwarded to the customer's privacy contact if found",
    body: processorRequestInput,
    handler: (ops, { body, actor }) => ops.processorMode.create(body, actor),
  },
  {
    method: 'get', path: '/privacy/processor-dsr', roles: COMPLIANCE, tag: 'compliance',
    summary: 'Processor-mode requests, newest first, with outcome, forward, its deadline and close (?outcome=forwarded|customer_not_found|no_contact|not_named&overdue=true&limit=; overdue=true: open forwards past their deadline, oldest first)',
    query: listProcessorRequestsInput,
    handler: (ops, { query }) => ops.processorMode.list(query),
  },
  {
    method: 'get', path: '/privacy/processor-dsr/:id', roles: COMPLIANCE, tag: 'compliance',
    summary: 'A processor-mode request: its answer and its forward (to whom, due, and who closed it, when and why)',
    handler: (ops, { params }) => ops.processorMode.get(params.id!),
  },
  {
    method: 'post', path: '/privacy/processor-dsr/:id/close', roles: COMPLIANCE, tag: 'compliance', body: closeForwardBody,
    summary: 'Close a request\'s forward ({"reason"}: the customer answered, or staff handled it; who, when and why are kept); 409 if closed already or never forwarded',
    handler: (ops, { params, body, actor }) => ops.processorMode.closeForward(params.id!, body, actor),
  },
  {
    method: 'get', path: '/privacy/dsr', roles: COMPLIANCE, tag: 'compliance',
    summary: 'List requests by due date (?status=open|<status>&overdue=true&type=&limit=&after=<last id>)',
    handler: (ops, { query }) => ops.dsr.list(query),
  },
  {
    method: 'get', path: '/privacy/dsr/:id', roles: COMPLIANCE, tag: 'compliance',
    summary: 'A request: status, deadline, live workflow state, the trail of events, erasure evidence, the answer sent',
    handler: (ops, { params }) => ops.dsr.get(params.id!),
  },
  {
    method: 'post', path: '/privacy/dsr/:id/verify', roles: COMPLIANCE, tag: 'compliance',
    summary: "Record a compliance officer's verification of identity (method, note)", body: verifyInput,
    handler: (ops, { params, body, actor }) => ops.dsr.verify(params.id!, body, actor),
  },
  {
    method: 'post', path: '/privacy/dsr/:id/extend', roles: COMPLIANCE, tag: 'compliance',
    summary: 'Extend the deadline once, within the first period, with the reason the subject is told', body: extendInput,
    handler: (ops, { params, body, actor }) => ops.dsr.extend(params.id!, body, actor),
  },
  {
    method: 'post', path: '/privacy/dsr/:id/refuse', roles: COMPLIANCE, tag: 'compliance',
    summary: 'Refuse the request, or some items of it, on a ground of the policy with an explanation for the subject', body: refuseInput,
    handler: (ops, { params, body, actor }) => ops.dsr.refuse(params.id!, body, actor),
  },
  {
    method: 'post', path: '/privacy/dsr/:id/withdraw', roles: COMPLIANCE, tag: 'compliance',
    summary: 'The subject withdrew the request',
    handler: (ops, { params, actor }) => ops.dsr.withdraw(params.id!, actor),
  },
  {
    method: 'post', path: '/privacy/dsr/:id/approve', roles: COMPLIANCE, tag: 'compliance',
    summary: 'Approve the changes of a correction request',
    handler: (ops, { params, actor }) => ops.dsr.approve(params.id!, actor),
  },
  {
    method: 'post', path: '/privacy/retention/runs', roles: COMPLIANCE, tag: 'compliance', status: 202,
    summary: 'Run metadata expiry now (the same workflow as the daily schedule); returns the run id',
    handler: (ops, { actor }) => ops.retention.run(actor),
  },
  {
    method: 'get', path: '/privacy/retention/runs', roles: COMPLIANCE, tag: 'compliance',
    summary: 'Expiry runs, newest first, with per-category counts (?limit=&before=<last run id>)',
    handler: (ops, { query }) => ops.retention.listRuns(query),
  },
  {
    method: 'get', path: '/privacy/retention/runs/:id', roles: COMPLIANCE, tag: 'compliance',
    summary: 'One expiry run: per category the cutoff, rows and partitions expired, rows kept back and why',
    handler: (ops, { params }) => ops.retention.getRun(params.id!),
  },
  {
    method: 'get', path: '/privacy/retention/policies', roles: COMPLIANCE, tag: 'compliance',
    summary: 'Retention policies: category, period, unit, action, legal basis',
    handler: (ops) => ops.retention.policies(),
  },
  {
    method: 'post', path: '/privacy/retention/policies', roles: ADMIN_ONLY, tag: 'admin',
    summary: "Change a category's period (audited with the reason)", body: setPolicyInput,
    handler: (ops, { body, actor }) => ops.retention.setPolicy(body, actor),
  },
  {
    method: 'post', path: '/privacy/legal-holds', roles: COMPLIANCE, tag: 'compliance', status: 201,
    summary: "Place an account's data under legal hold: expiry skips it", body: addHoldInput,
    handler: (ops, { body, actor }) => ops.retention.addHold(body, actor),
  },
  {
    method: 'get', path: '/privacy/legal-holds', roles: COMPLIANCE, tag: 'compliance',
    summary: 'Legal holds, newest first (?active=true&limit=&before=<last hold id>)',
    handler: (ops, { query }) => ops.retention.holds(query),
  },
  {
    method: 'post', path: '/privacy/legal-holds/:id/release', roles: COMPLIANCE, tag: 'compliance',
    summary: 'Release a legal hold (with the reason)', body: releaseHoldInput,
    handler: (ops, { params, body, actor }) => ops.retention.releaseHold(params.id!, body, actor),
  },
  {
    method: 'get', path: '/privacy/register/activities', roles: COMPLIANCE, tag: 'compliance',
    summary: 'Processing activities of the register: purpose, legal basis, categories of data subjects and data, systems, retention category',
    handler: (ops) => ops.register.activities.list(),
  },
  {
    method: 'post', path: '/privacy/register/activities', roles: COMPLIANCE, tag: 'compliance', status: 201,
    summary: 'Add a processing activity (logged with the reason)', body: createActivityInput,
    handler: (ops, { body, actor }) => ops.register.activities.create(body, actor),
  },
  {
    method: 'get', path: '/privacy/register/activities/:id', roles: COMPLIANCE, tag: 'compliance',
    summary: 'One processing activity',
    handler: (ops, { params }) => ops.register.activities.get(params.id!),
  },
  {
    method: 'post', path: '/privacy/register/activities/:id', roles: COMPLIANCE, tag: 'compliance',
    summary: 'Change a processing activity: the fields given (logged with the reason, before and after)', body: updateActivityInput,
    handler: (ops, { params, body, actor }) => ops.register.activities.update(params.id!, body, actor),
  },
  {
    method: 'get', path: '/privacy/register/recipients', roles: COMPLIANCE, tag: 'compliance',
    summary: 'Recipients of the register: role, countries, transfer mechanism, agreement, and what each entry lacks (`missing`)',
    handler: (ops) => ops.register.recipients.list(),
  },
  {
    method: 'post', path: '/privacy/register/recipients', roles: COMPLIANCE, tag: 'compliance', status: 201,
    summary: 'Add a recipient: kind model_provider with provider (id or name), other kinds with name (logged with the reason)', body: createRecipientInput,
    handler: (ops, { body, actor }) => ops.register.recipients.create(body, actor),
  },
  {
    method: 'get', path: '/privacy/register/recipients/:id', roles: COMPLIANCE, tag: 'compliance',
    summary: 'One recipient',
    handler: (ops, { params }) => ops.register.recipients.get(params.id!),
  },
  {
    method: 'post', path: '/privacy/register/recipients/:id', roles: COMPLIANCE, tag: 'compliance',
    summary: 'Change a recipient: the fields given (logged with the reason, before and after)', body: updateRecipientInput,
    handler: (ops, { params, body, actor }) => ops.register.recipients.update(params.id!, body, actor),
  },
  {
    method: 'get', path: '/privacy/register/completeness', roles: COMPLIANCE, tag: 'compliance',
    summary: 'Every provider with what its register entry lacks (no entry at all is incomplete), and the other recipients likewise',
    handler: (ops) => ops.register.completeness(),
  },
  {
    method: 'get', path: '/privacy/register/changes', roles: COMPLIANCE, tag: 'compliance',
    summary: 'The register change log, newest first: who, why, before and after (?limit=&before=<last change id>&entityId=)', query: listChangesInput,
    handler: (ops, { query }) => ops.register.changes(query),
  },
  // Sub-processor changes: a new recipient or new countries, announced to accounts with a data-processing agreement.
  {
    method: 'get', path: '/privacy/register/subprocessor-changes', roles: COMPLIANCE, tag: 'compliance', query: listSubprocessorChangesInput,
    summary: 'Sub-processor changes, newest first: recipient, kind, countries, notice period, effective date (?limit=&open=true: only those whose period has not ended)',
    handler: (ops, { query }) => ops.subprocessors.changes.list(query),
  },
  {
    method: 'post', path: '/privacy/register/subprocessor-changes/resume', roles: COMPLIANCE, tag: 'compliance',
    summary: 'Start the notice workflow of every change whose period has not ended (after a failed start; a running or finished one is left as it is)',
    handler: (ops) => ops.subprocessors.changes.resume(),
  },
  {
    method: 'get', path: '/privacy/register/subprocessor-changes/:id', roles: COMPLIANCE, tag: 'compliance',
    summary: 'One sub-processor change with how many of its notices are pending, accepted, objected and effective',
    handler: (ops, { params }) => ops.subprocessors.changes.get(params.id!),
  },
  {
    method: 'get', path: '/privacy/register/subprocessor-changes/:id/notices', roles: COMPLIANCE, tag: 'compliance', query: changeNoticesInput,
    summary: "A change's notices by account id: status, notified, who decided and when (?limit=&after=<last account id>)",
    handler: (ops, { params, query }) => ops.subprocessors.changes.notices(params.id!, query),
  },
  {
    method: 'post', path: '/privacy/register/subprocessor-changes/:id/accounts/:accountId/decision', roles: COMPLIANCE, tag: 'compliance', body: decideInput,
    summary: 'Record an account\'s decision on a notice for it ({"decision": "accept" | "object", "reason"}; the reason is required and kept): accept lets the recipient in now, object keeps it out',
    handler: (ops, { params, body, actor }) => ops.subprocessors.notices.decide(params.id!, params.accountId!, body, actor),
  },
  // Privacy policy versions (docs/customer-console.md#policy-changes): a material one is a notice to every signed-in customer and an email to every account owner.
  {
    method: 'get', path: '/privacy/policy-versions', roles: COMPLIANCE, tag: 'compliance',
    summary: 'Published privacy policy versions, newest first, with how many users acknowledged each',
    handler: (ops) => ops.policyVersions.list(),
  },
  {
    method: 'post', path: '/privacy/policy-versions', roles: COMPLIANCE, tag: 'compliance', status: 201, body: publishPolicyVersionInput,
    summary: 'Publish a privacy policy version ({"version", "title", "summary", "url"?, "material"?}); a version is never reused (409). A material one starts the owners\' email workflow `policy-published:{version}`',
    handler: (ops, { body, actor }) => ops.policyVersions.publish(body, actor),
  },
  {
    method: 'post', path: '/privacy/policy-versions/:version/resume-emails', roles: COMPLIANCE, tag: 'compliance',
    summary: "Start a material version's owner emails again (after a failed start; a running or finished run is found, not repeated)",
    handler: (ops, { params }) => ops.policyVersions.resumeEmails(params.version!),
  },
  {
    method: 'get', path: '/privacy/register/record-of-processing', roles: COMPLIANCE, tag: 'compliance', query: recordOfProcessingInput, responseType: 'text/csv',
    summary: 'The record of processing activities (GDPR article 30), generated from the register and the retention policies (?format=csv or ?format=pdf)',
    handler: async (ops, { query }) => {
      const r = await ops.ropa.recordOfProcessing(query);
      return { raw: true, contentType: r.contentType, body: r.body, filename: r.filename } satisfies RawResult;
    },
  },
  {
    method: 'post', path: '/billing/staff-tokens', roles: ADMIN_ONLY, tag: 'admin', status: 201,
    summary: 'Create a staff token (the token is in this response only)', body: createStaffTokenInput,
    handler: (ops, { body }) => ops.createStaffToken(body),
  },
  {
    method: 'post', path: '/billing/staff-tokens/:id/revoke', roles: ADMIN_ONLY, tag: 'admin',
    summary: 'Revoke a staff token (idempotent)',
    handler: (ops, { params }) => ops.revokeStaffToken({ id: params.id }),
  },
];
