import express, { Router, type Express } from 'express';
import type { Logger } from '../logger';
import type { CustomerConsoleService } from './customerConsole.service';
import type { ConsoleKeysService } from './keys.service';
import type { CustomerBillingService } from './billing.service';
import { billingPages } from './pages/billing';
import { customerPageKit } from './pages/kit';
import { keysPages } from './pages/keys';
import { overviewPages } from './pages/overview';
import { securityPages } from './pages/security';
import { customerSignInPages, type CustomerSignInOptions } from './pages/signIn';
import { usagePages } from './pages/usage';
import { privacyPages } from './pages/privacy';
import type { ConsolePrivacyService } from './privacy.service';
import { alertsPages } from './pages/alerts';
import type { ConsoleAlertsService } from './alerts.service';
import type { UsageService } from './usage.service';
import { membersPages } from './pages/members';
import { invitationPages } from './pages/invitation';
import type { MembersService } from './members.service';
import { loadCustomerSession } from './session';
import { consoleSecurityHeaders } from '../console/securityHeaders';
import type { ConsentService } from './consent.service';
import { consentPages } from './pages/cookies';
import { policyNoticePages } from './pages/policyNotice';
import type { PolicyVersionsService } from '../policyVersions/policyVersions.service';

/**
 * The customer console at /app: server-rendered pages for the users of an
 * account, with the staff console's layout, assets (/console/assets), sign-in
 * form protection and security headers. The account every page shows is the
 * session's. The admin app builds the service and mounts this router.
 */
export interface CustomerConsoleDeps extends CustomerSignInOptions {
  service: CustomerConsoleService;
  logger: Logger;
  /** The Billing page's service; without it the page is not served. */
  billing?: CustomerBillingService;
  /** The payment provider's hosted checkout origin, where the top-up and Pay forms lead (allowed in the CSP). */
  checkoutOrigin?: string;
  /** API keys (/app/keys); without it the page is not mounted. */
  keys?: ConsoleKeysService;
  /** The Usage page's service (/app/usage); without it the page is not served. */
  usage?: UsageService;
  /** The Your privacy page's service (/app/privacy): the user's own data-subject requests; without it the page is not served. */
  privacy?: ConsolePrivacyService;
  /** Alerts and webhooks (/app/alerts); without it the page is not served. */
  alerts?: ConsoleAlertsService;
  /** Members (/app/members) and accepting an invitation (/app/invitations/accept); without it neither is served. */
  members?: MembersService;
  /** A changed privacy policy's notice above every page and its acknowledgement (/app/policy/acknowledge); without it, no notice. */
  policies?: Pick<PolicyVersionsService, 'noticeFor' | 'acknowledge'>;
  /** Cookie consent and page analytics (the banner, /app/cookies, POST /app/consent); without it no banner and nothing is counted. */
  consent?: ConsentService;
}

/** The router, carrying the registry of its signed-in routes (kit.routes) for the tests that walk every page and action. */
export type CustomerConsoleRouter = Router & { customerRoutes: ReturnType<typeof customerPageKit>['routes'] };

/** The registry of the customer console an app (the admin app) mounted; empty when it mounted none. */
export function customerRoutesOf(app: Express): CustomerConsoleRouter['customerRoutes'] {
  const mounted = app.router.stack.map((l) => l.handle as unknown as Partial<CustomerConsoleRouter>).find((h) => Array.isArray(h.customerRoutes));
  return mounted?.customerRoutes ?? [];
}

export function customerConsoleRouter(deps: CustomerConsoleDeps): CustomerConsoleRouter {
  const router = Router();
  // The staff console's policy: scripts, styles and forms from this origin only.
  router.use('/app', consoleSecurityHeaders({ formActionOrigins: deps.billing && deps.checkoutOrigin ? [deps.checkoutOrigin] : [] }));
  router.use('/app', express.urlencoded({ extended: false, limit: '64kb' }), loadCustomerSession(deps.service));

  // Before the kit: the cookie choice must be known (and the view counted) before banners and pages run.
  const consent = deps.consent ? consentPages(router, deps.consent, deps.logger) : null;
  const kit = customerPageKit(router, deps.logger);
  consent?.mount(kit);
  customerSignInPages(kit, deps.service, deps);
  overviewPages(kit, deps.service, deps.alerts);
  securityPages(kit, deps.service, deps);
  if (deps.billing) billingPages(kit, deps.billing);
  if (deps.keys) keysPages(kit, deps.keys);
  if (deps.usage) usagePages(kit, deps.usage);
  if (deps.privacy) privacyPages(kit, deps.privacy);
  if (deps.alerts) alertsPages(kit, deps.alerts);
  if (deps.members) {
    membersPages(kit, deps.members);
    invitationPages(kit, deps.members, { logger: deps.logger, trustedProxies: deps.trustedProxies });
  }
  if (deps.policies) policyNoticePages(kit, deps.policies);
  return Object.assign(router, { customerRoutes: kit.routes });
}
