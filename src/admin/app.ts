import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import express, { type Express, type RequestHandler } from 'express';
import type { Clock } from '../clock';
import type { Db } from '../db/knex';
import { healthRouter, type ReadinessCheck } from '../http/health';
import { requestIdMiddleware } from '../http/requestId';
import type { Logger } from '../logger';
import { accountsService } from '../accounts/accounts.service';
import { requireRoles, type StaffPrincipal } from './auth';
import { ledgerService } from '../ledger/ledger.service';
import { topUpCheckoutService } from '../ledger/checkout.service';
import type { Config } from '../config';
import type { Client } from '@temporalio/client';
import { paymentWebhookRouter } from './webhooks';
import { openApiDocument } from './openapi';
import { problemErrorHandler, sendProblem } from './problem';
import { adminRoutes, type AdminOperations, type RawResult } from './routes';
import { invoicingService } from '../invoicing/invoicing.service';
import { reconciliationService } from '../reconciliation/reconciliation.service';
import { privacyService } from '../privacy/privacy.service';
import { retentionService } from '../retention/retention.service';
import { publicPrivacyRouter } from './publicPrivacy';
import { consoleRouter } from '../console/app';
import { customerConsoleRouter } from '../customerConsole/app';
import { customerConsoleService } from '../customerConsole/customerConsole.service';
import { secondFactorService } from '../customerConsole/secondFactor.service';
import { loginLinkService } from '../customerConsole/loginLink.service';
import { consoleKeysService } from '../customerConsole/keys.service';
import { keysService } from '../accounts/keys.service';
import { customerBillingService } from '../customerConsole/billing.service';
import { usageService } from '../customerConsole/usage.service';
import { consolePrivacyService } from '../customerConsole/privacy.service';
import { consoleAlertsService } from '../customerConsole/alerts.service';
import { consentService } from '../customerConsole/consent.service';
import { membersService } from '../customerConsole/members.service';
import { checkoutService } from '../invoicing/checkout.service';
import { staffService } from '../staff/staff.service';
import { renderInvoiceHtml, renderInvoicePdf } from '../invoicing/render';
import { accountEventsService } from '../notifications/events.service';
import { webhooksService } from '../webhooks/webhooks.service';
import { dunningOperations } from '../invoicing/dunning.service';
import { suspensionService } from '../invoicing/suspension.service';
import { regionPolicyService } from '../accounts/regionPolicy.service';
import { processorModeService } from '../privacy/processorMode.service';
import { subprocessorService } from '../register/subprocessor.service';
import { registerService } from '../register/register.service';
import { ropaService } from '../register/ropa.service';
import { policyVersionsService } from '../policyVersions/policyVersions.service';

export interface AdminAppDeps {
  db: Db;
  billing: Config['billing'];
  config: Config;
  /** Temporal for top-ups and payment webhooks; absent, those answer 503. */
  temporal?: { client: Client; taskQueue: string };
  clock: Clock;
  logger: Logger;
  readiness: Record<string, ReadinessCheck>;
  readyCheckTimeoutMs: number;
}

export function createAdminApp(deps: AdminAppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  const invoicing = invoicingService({ db: deps.db, clock: deps.clock, config: deps.config, temporal: deps.temporal });
  const invoices = invoicing.invoices;
  const ledger = ledgerService(deps);
  const staff = staffService({ db: deps.db, clock: deps.clock });
  const ops: AdminOperations = {
    ...accountsService(deps),
    createStaffToken: staff.createStaffToken,
    revokeStaffToken: staff.revokeStaffToken,
    ...ledger,
    invoices,
    runs: invoicing.runs,
    taxRates: invoicing.taxRates,
    payments: invoicing.payments,
    accountingExport: invoicing.accountingExport,
    suspension: suspensionService({ db: deps.db, clock: deps.clock }),
    regionPolicy: regionPolicyService({ db: deps.db }),
    render: {
      pdf: async (id) => renderInvoicePdf(await invoices.document(id)),
      html: async (id) => renderInvoiceHtml(await invoices.document(id)),
    },
    reconciliation: reconciliationService({ db: deps.db, clock: deps.clock, client: deps.temporal?.client, taskQueue: deps.temporal?.taskQueue }),
    dsr: privacyService({ db: deps.db, clock: deps.clock, config: deps.config, client: deps.temporal?.client, taskQueue: deps.temporal?.taskQueue }),
    processorMode: processorModeService({
      db: deps.db,
      clock: deps.clock,
      config: deps.config,
      // The message only (an SMTP error may echo the address): the queued message waits for the next send.
      onSendError: (err) => deps.logger.warn({ err: (err as Error).message }, 'processor-mode email not sent yet'),
    }),
    retention: retentionService({ db: deps.db, clock: deps.clock, config: deps.config, client: deps.temporal?.client, taskQueue: deps.temporal?.taskQueue }),
    alerts: accountEventsService({ db: deps.db, mail: deps.config.mail }),
    webhooks: webhooksService({ db: deps.db, clock: deps.clock, config: deps.config }),
    dunning: dunningOperations({ db: deps.db, clock: deps.clock, config: deps.config, temporal: deps.temporal }),
    register: registerService({
      db: deps.db,
      clock: deps.clock,
      subprocessors: {
        noticePeriodMs: deps.config.register.subprocessorNoticeS * 1000,
        temporal: deps.temporal,
        // The id is enough to find it (`mixroute register notices resume` starts it again).
        onStartError: (err) => deps.logger.error({ err: (err as Error).message }, 'sub-processor notice workflow not started; run `mixroute register notices resume`'),
      },
    }),
    subprocessors: subprocessorService({ db: deps.db, clock: deps.clock, temporal: deps.temporal }),
    ropa: ropaService({ db: deps.db, clock: deps.clock, controller: deps.config.invoicing.issuer }),
    policyVersions: policyVersionsService({
      db: deps.db,
      clock: deps.clock,
      temporal: deps.temporal,
      // The version stands; `mixroute policy resume-emails <version>` starts the emails again.
      onStartError: (err) => deps.logger.error({ err: (err as Error).message }, 'policy email workflow not started; run `mixroute policy resume-emails <version>`'),
    }),
  };

  app.use(requestIdMiddleware('adm-'));
  app.use(healthRouter(deps.readiness, deps.readyCheckTimeoutMs, deps.logger));
  const openApi = openApiDocument();
  app.get('/openapi.json', (_req, res) => {
    res.json(openApi);
  });

  app.use(
    paymentWebhookRouter({
      ledger,
      invoicePayments: invoicing.payments,
      checkout: topUpCheckoutService({ db: deps.db, config: deps.config }),
      logger: deps.logger,
      secret: deps.billing.webhookSecret,
      toleranceS: deps.billing.webhookToleranceS,
      temporal: deps.temporal,
    }),
  );
  app.use(publicPrivacyRouter({ dsr: ops.dsr, processorMode: ops.processorMode, rpm: deps.config.dsr.intakeRpm, trustedProxies: deps.config.gateway.trustedProxies }));
  app.use(consoleRouter({ db: deps.db, ops, temporal: deps.temporal, logger: deps.logger, trustedProxies: deps.config.gateway.trustedProxies }));
  app.use(
    customerConsoleRouter({
      service: customerConsoleService({ db: deps.db, clock: deps.clock, ledger }),
      secondFactor: secondFactorService({ db: deps.db, clock: deps.clock, config: deps.config }),
      loginLinks: loginLinkService({
        db: deps.db,
        clock: deps.clock,
        mail: deps.config.mail,
        publicBaseUrl: deps.config.checkout.publicBaseUrl,
        onSendError: (err) => deps.logger.error({ errType: (err as Error)?.name }, 'sign-in link email not sent; the link was dropped'),
      }),
      keys: consoleKeysService({ db: deps.db, clock: deps.clock, keys: keysService({ db: deps.db, clock: deps.clock }) }),
      billing: customerBillingService({
        invoices,
        renderPdf: renderInvoicePdf,
        checkout: checkoutService({ db: deps.db, config: deps.config }),
        ledger,
        accounts: accountsService(deps),
        limits: deps.config.checkout,
      }),
      checkoutOrigin: deps.config.checkout.providerOrigin,
      usage: usageService({ db: deps.db, clock: deps.clock }),
      privacy: consolePrivacyService({ privacy: ops.dsr }),
      alerts: consoleAlertsService({ events: ops.alerts, webhooks: ops.webhooks }),
      consent: consentService({ db: deps.db, clock: deps.clock }),
      members: membersService({
        db: deps.db,
        clock: deps.clock,
        publicBaseUrl: deps.config.checkout.publicBaseUrl,
        mail: deps.config.mail,
        // The message only (an SMTP error may echo the address): the queued email goes with a later invitation.
        onSendError: (err) => deps.logger.warn({ err: (err as Error).message }, 'invitation email not sent yet'),
      }),
      policies: ops.policyVersions,
      logger: deps.logger,
      trustedProxies: deps.config.gateway.trustedProxies,
    }),
  );
  // Bodies are parsed per route and only after the role check, so a client
  // without a valid token cannot make the server read (up to 20 MB of) a body.
  const parsers: Record<'json' | 'csv' | 'none', RequestHandler[]> = {
    json: [express.json({ limit: '1mb', strict: true })],
    // Provider usage statements are CSV files.
    csv: [express.text({ type: 'text/csv', limit: '20mb' })],
    none: [],
  };
  for (const route of adminRoutes) {
    const bodyKind = route.bodyType ?? (route.body ? 'json' : 'none');
    app[route.method](route.path, requireRoles(staff, route.roles), ...parsers[bodyKind], async (req, res) => {
      const result = await route.handler(ops, {
        params: req.params as Record<string, string>,
        query: req.query as Record<string, unknown>,
        // No body and no content-type: validate an empty object, so the error names the missing fields.
        body: req.body ?? {},
        actor: `staff:${(res.locals.staff as StaffPrincipal).tokenId}`,
      });
      if (result && typeof result === 'object' && (result as RawResult).raw === true) {
        const r = result as RawResult;
        res.status(route.status ?? 200).type(r.contentType);
        if (r.filename) res.setHeader('content-disposition', `attachment; filename="${r.filename}"`);
        if (typeof r.body === 'string' || Buffer.isBuffer(r.body)) res.send(r.body);
        // Streamed as produced (a long CSV); a failure half way cuts the response short, so the client sees it incomplete.
        else await pipeline(Readable.from(r.body), res).catch((err: unknown) => deps.logger.warn({ requestId: res.locals.requestId, err: (err as Error).message }, 'streamed response ended early'));
        return;
      }
      res.status(route.status ?? 200).json(result);
    });
  }

  app.use((req, res) => {
    const known = adminRoutes.some((r) => matchPath(r.path, req.path));
    if (known) sendProblem(res, 405, 'method_not_allowed', `${req.method} is not allowed on ${req.path}`);
    else sendProblem(res, 404, 'not_found', `no route ${req.method} ${req.path}; see /openapi.json`);
  });
  app.use(problemErrorHandler(deps.logger));
  return app;
}

function matchPath(pattern: string, actual: string): boolean {
  const re = new RegExp(`^${pattern.replace(/:\w+/g, '[^/]+')}/?$`);
  return re.test(actual);
}
