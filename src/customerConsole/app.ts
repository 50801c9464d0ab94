import express, { Router } from 'express';
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
import { loadCustomerSession } from './session';
import { consoleSecurityHeaders } from '../console/securityHeaders';

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
  /** API keys (/app/keys); without it the page is not mounted. */
  keys?: ConsoleKeysService;
  /** The Usage page's service (/app/usage); without it the page is not served. */
  usage?: UsageService;
  /** The Your privacy page's service (/app/privacy): the user's own data-subject requests; without it the page is not served. */
  privacy?: ConsolePrivacyService;
  /** Alerts and webhooks (/app/alerts); without it the page is not served. */
  alerts?: ConsoleAlertsService;
}

export function customerConsoleRouter(deps: CustomerConsoleDeps): Router {
  const router = Router();
  // The staff console's policy: scripts, styles and forms from this origin only.
  router.use('/app', consoleSecurityHeaders());
  router.use('/app', express.urlencoded({ extended: false, limit: '64kb' }), loadCustomerSession(deps.service));

  const kit = customerPageKit(router, deps.logger);
  customerSignInPages(kit, deps.service, deps);
  overviewPages(kit, deps.service);
  securityPages(kit, deps.service);
  if (deps.billing) billingPages(kit, deps.billing);
  if (deps.keys) keysPages(kit, deps.keys);
  if (deps.usage) usagePages(kit, deps.usage);
  if (deps.privacy) privacyPages(kit, deps.privacy);
  if (deps.alerts) alertsPages(kit, deps.alerts);
  return router;
}
