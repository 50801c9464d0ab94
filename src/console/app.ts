import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Client } from '@temporalio/client';
import express, { Router } from 'express';
import { accountPageService } from '../accounts/accountPage.service';
import type { Db } from '../db/knex';
import type { Logger } from '../logger';
import { staffService } from '../staff/staff.service';
import type { ConsoleOperations } from './operations';
import { consoleSecurityHeaders } from './securityHeaders';
import { accountsPages } from './pages/accounts';
import { collectionsPages } from './pages/collections';
import { invoiceRunsPages } from './pages/invoiceRuns';
import { invoicesPages } from './pages/invoices';
import { pageKit } from './pages/kit';
import { policiesPages } from './pages/policies';
import { privacyRequestsPages } from './pages/privacyRequests';
import { privacyPolicyPages } from './pages/privacyPolicy';
import { policyVersionsService } from '../policyVersions/policyVersions.service';
import { systemClock } from '../clock';
import { receivablesPages } from './pages/receivables';
import { reconciliationPages } from './pages/reconciliation';
import { registerPages } from './pages/register';
import { retentionPages } from './pages/retention';
import { signInPages } from './pages/signIn';
import { staffPages } from './pages/staff';
import { webhooksPages } from './pages/webhooks';
import { loadSession } from './session';

/**
 * The staff console at /console: server-rendered pages over the same
 * services as the admin API (no business logic here), htmx for live
 * progress, Chart.js for the usage chart, both served from node_modules as
 * static assets. This file builds the router (security headers, assets,
 * sessions) and mounts the pages, one file per area in ./pages.
 */
const require = createRequire(import.meta.url);
const ASSETS = fileURLToPath(new URL('./assets/', import.meta.url));
const HTMX = require.resolve('htmx.org/dist/htmx.min.js');
const CHART = path.join(path.dirname(require.resolve('chart.js')), 'chart.umd.js');

export interface ConsoleDeps {
  db: Db;
  ops: ConsoleOperations;
  temporal?: { client: Client; taskQueue: string };
  logger: Logger;
  /** Sign-in attempts per client address and minute (default 10). */
  loginRpm?: number;
  /** Sign-in attempts per account (email or staff token) and window (default 5 per 15 minutes), across addresses and instances. */
  accountAttempts?: number;
  accountWindowS?: number;
  /** TRUSTED_PROXIES: whose X-Forwarded-For names the client address. */
  trustedProxies?: readonly string[];
}

export function consoleRouter(deps: ConsoleDeps): Router {
  const { db, ops } = deps;
  const staff = staffService({ db });
  const router = Router();

  router.use('/console', consoleSecurityHeaders());
  router.get('/console/assets/htmx.min.js', (_req, res) => res.sendFile(HTMX));
  router.get('/console/assets/chart.umd.js', (_req, res) => res.sendFile(CHART));
  router.use('/console/assets', express.static(ASSETS, { fallthrough: false, maxAge: '1h' }));
  router.use('/console', express.urlencoded({ extended: false, limit: '64kb' }), loadSession(staff));

  const kit = pageKit(router, deps.logger);
  signInPages(kit, staff, deps);
  const collections = collectionsPages(kit, ops);
  accountsPages(kit, ops, accountPageService({ db }), collections);
  invoiceRunsPages(kit, ops, deps.temporal);
  invoicesPages(kit, ops);
  receivablesPages(kit, ops.payments);
  reconciliationPages(kit, ops);
  privacyRequestsPages(kit, ops);
  retentionPages(kit, ops);
  registerPages(kit, ops);
  privacyPolicyPages(
    kit,
    policyVersionsService({
      db,
      clock: systemClock,
      temporal: deps.temporal,
      // The version stands; `mixroute policy resume-emails <version>` starts the emails again.
      onStartError: (err) => deps.logger.error({ err: (err as Error).message }, 'policy email workflow not started'),
    }),
  );
  staffPages(kit, staff);
  policiesPages(kit, ops);
  webhooksPages(kit, ops);
  return router;
}
