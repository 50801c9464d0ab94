import { randomUUID } from 'node:crypto';
import { expect } from 'vitest';
import { accountsService } from '../../src/accounts/accounts.service';
import { systemClock } from '../../src/clock';
import type { Config } from '../../src/config';
import { CONSOLE_ROLES, type ConsoleRole } from '../../src/customerConsole/customerConsole.rules';
import { customerConsoleService } from '../../src/customerConsole/customerConsole.service';
import type { Db } from '../../src/db/knex';
import { browser as makeBrowser, csrfOf, signedIn, signIn, type Browser } from './customerConsole';
import { postpaidInvoiceFactory } from './postpaidInvoice';
import { insertUsageEvents } from './usageEvents';

/**
 * An account as the customer console shows it, with a row of every kind its
 * pages list (a finalized invoice, an API key, usage, a webhook endpoint with
 * a failed delivery, an account event, a privacy request per user, an open
 * invitation) and one
 * signed-in user per console role. Every name, email and id carries the
 * account's label and a random tag, so a test can look for it in another
 * account's pages. The admin app must be served at `base` behind a loopback
 * proxy (TRUSTED_PROXIES=loopback) with Temporal (privacy requests).
 */
export const CONSOLE_PASSWORD = 'correct horse battery staple';

export interface ConsoleMember {
  role: ConsoleRole;
  userId: string;
  name: string;
  email: string;
  /** A privacy request this user filed (a user sees only their own). */
  privacyRequestId: string;
  browser: Browser;
  csrf: string;
}

export interface ConsoleAccount {
  label: string;
  accountId: string;
  accountName: string;
  invoiceId: string;
  invoiceNumber: string;
  keyId: string;
  keyName: string;
  keyPrefix: string;
  model: string;
  endpointId: string;
  endpointUrl: string;
  deliveryId: string;
  invitationId: string;
  inviteeEmail: string;
  members: Record<ConsoleRole, ConsoleMember>;
  /** Every text and id of this account that another account's user must never see. */
  secrets: string[];
}

type Ids = (x: ConsoleAccount, role: ConsoleRole) => Record<string, string>;
/**
 * The path parameters of each registered route with parameters, from an
 * account's rows (as `role` of it sees them). A new route with parameters
 * needs its line here: test/security/customer-console-every-route.test.ts fails until it has one.
 */
export const ROUTE_PARAMS: Record<string, Ids> = {
  '/app/keys/:id': (x) => ({ id: x.keyId }),
  '/app/keys/:id/revoke': (x) => ({ id: x.keyId }),
  '/app/billing/invoices/:id.pdf': (x) => ({ id: x.invoiceId }),
  '/app/alerts/webhooks/:id': (x) => ({ id: x.endpointId }),
  '/app/alerts/webhooks/:id/disable': (x) => ({ id: x.endpointId }),
  '/app/alerts/webhooks/:id/enable': (x) => ({ id: x.endpointId }),
  '/app/alerts/webhooks/:id/delete': (x) => ({ id: x.endpointId }),
  '/app/alerts/deliveries/:id/redeliver': (x) => ({ id: x.deliveryId }),
  // A user sees only the requests they filed.
  '/app/privacy/requests/:id': (x, role) => ({ id: x.members[role].privacyRequestId }),
  '/app/members/invitations/:id/revoke': (x) => ({ id: x.invitationId }),
  '/app/members/:id/role': (x) => ({ id: x.members.developer.userId }),
  '/app/members/:id/remove': (x) => ({ id: x.members.developer.userId }),
};

/** The path of a registered route for `role` of `x`, or null when it has parameters ROUTE_PARAMS cannot fill. */
export function routePath(path: string, x: ConsoleAccount, role: ConsoleRole): string | null {
  if (!/:\w+/.test(path)) return path;
  const params = ROUTE_PARAMS[path]?.(x, role);
  if (!params) return null;
  return path.replace(/:(\w+)/g, (_m, name: string) => encodeURIComponent(params[name] ?? ''));
}

// Each sign-in from an address of its own: the per-address limit is 10 a minute.
let address = 0;
export const consoleBrowser = (base: string) => {
  address++;
  return makeBrowser(base, { 'x-forwarded-for': `198.18.${Math.floor(address / 250)}.${(address % 250) + 1}` });
};

/** Signs `email` in from a fresh address; the browser and its CSRF token. */
export async function signedInBrowser(base: string, email: string): Promise<{ browser: Browser; csrf: string }> {
  const b = consoleBrowser(base);
  expect(signedIn(await signIn(b, email, CONSOLE_PASSWORD)), `sign-in of ${email}`).toBe(true);
  return { browser: b, csrf: await csrfOf(b) };
}

/** Builds the factory once per test file (it adds a provider, a model and a price). */
export async function consoleAccountFactory(db: Db, config: Config, base: string) {
  const postpaidInvoice = await postpaidInvoiceFactory(db, config);
  const ops = accountsService({ db, clock: systemClock, config });
  const passwords = customerConsoleService({ db });

  return async function consoleAccount(label: string): Promise<ConsoleAccount> {
    const tag = randomUUID().slice(0, 8);
    const lower = label.toLowerCase();
    const inv = await postpaidInvoice(`${label} Holdings`);
    const accountName = (await db('accounts').where({ id: inv.accountId }).first('name')).name as string;

    const users = {} as Record<ConsoleRole, Omit<ConsoleMember, 'privacyRequestId' | 'browser' | 'csrf'>>;
    for (const role of CONSOLE_ROLES) {
      const name = `${label} ${role} person ${tag}`;
      const email = `${lower}-${role}-${tag}@example.com`;
      const user = await ops.createUser({ accountId: inv.accountId, name, email });
      await passwords.setPassword(user.id, CONSOLE_PASSWORD);
      await db('users').where({ id: user.id }).update({ console_role: role });
      users[role] = { role, userId: user.id as string, name, email };
    }

    const keyName = `${lower}-key-${tag}`;
    const key = await ops.createKey({ accountId: inv.accountId, userId: users.owner.userId, name: keyName });
    const keyPrefix = (await db('api_keys').where({ id: key.id }).first('prefix')).prefix as string;
    const model = `${lower}-model-${tag}`;
    await insertUsageEvents(db, [{ account_id: inv.accountId, api_key_id: key.id, user_id: users.developer.userId, model, occurred_at: new Date(Date.now() - 60_000), cost: '0.42' }]);

    const members = {} as Record<ConsoleRole, ConsoleMember>;
    for (const role of CONSOLE_ROLES) {
      const { browser, csrf } = await signedInBrowser(base, users[role].email);
      const filed = await browser.post('/app/privacy/requests', { _csrf: csrf, type: 'restriction' });
      expect(filed.location, `${label} ${role} files a privacy request`).toBe('/app/privacy?msg=privacy_request_filed');
      const row = await db('dsr_requests').where({ created_by: `console:user:${users[role].userId}` }).first('id');
      members[role] = { ...users[role], privacyRequestId: row.id as string, browser, csrf };
    }

    // The endpoint as a member adds it; an event gives it a delivery, failed so "Send again" is offered.
    const endpointUrl = `https://hooks.example.com/${lower}-${tag}`;
    const owner = members.owner;
    const added = await owner.browser.post('/app/alerts/webhooks', { _csrf: owner.csrf, url: endpointUrl, events: 'balance.low' });
    expect(added.status, `${label} adds a webhook endpoint`).toBe(200);
    const endpointId = (await db('webhook_endpoints').where({ account_id: inv.accountId }).first('id')).id as string;
    const [event] = await db('account_events')
      .insert({ account_id: inv.accountId, type: 'balance.low', data: JSON.stringify({ threshold: '10', currency: 'USD' }), dedupe_key: `cc-every-route:${tag}` })
      .returning('id');
    const delivery = await db('webhook_deliveries').where({ endpoint_id: endpointId, event_id: (event as { id: string }).id }).first();
    await db('webhook_deliveries').where({ id: delivery.id }).update({ status: 'failed' });

    // An invitation not yet accepted (its mail goes to the file mailbox).
    const inviteeEmail = `${lower}-invitee-${tag}@example.com`;
    const invited = await owner.browser.post('/app/members/invite', { _csrf: owner.csrf, email: inviteeEmail, role: 'developer' });
    expect(invited.location, `${label} invites a member`).toBe('/app/members?msg=members_invited');
    const invitationId = (await db('customer_invitations').where({ account_id: inv.accountId }).first('id')).id as string;

    const ids = [inv.accountId, invitationId, inv.invoiceId, key.id as string, endpointId, delivery.id as string, ...Object.values(members).flatMap((m) => [m.userId, m.privacyRequestId])];
    const texts = [accountName, inviteeEmail, inv.number, keyName, keyPrefix, model, endpointUrl, ...Object.values(members).flatMap((m) => [m.name, m.email])];
    return {
      label,
      accountId: inv.accountId,
      accountName,
      invoiceId: inv.invoiceId,
      invoiceNumber: inv.number,
      keyId: key.id as string,
      keyName,
      keyPrefix,
      model,
      endpointId,
      endpointUrl,
      deliveryId: delivery.id as string,
      invitationId,
      inviteeEmail,
      members,
      secrets: [...ids, ...texts],
    };
  };
}
