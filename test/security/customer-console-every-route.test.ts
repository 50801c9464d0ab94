import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminApp } from '../../src/admin/app';
import { systemClock } from '../../src/clock';
import type { Config } from '../../src/config';
import { customerRoutesOf } from '../../src/customerConsole/app';
import { CONSOLE_ROLES, mayUse, type ConsoleRole } from '../../src/customerConsole/customerConsole.rules';
import type { CustomerRoute } from '../../src/customerConsole/pages/kit';
import { dsrSuite } from '../helpers/dsrStack';
import { consoleAccountFactory, consoleBrowser, ROUTE_PARAMS, signedInBrowser, type ConsoleAccount } from '../helpers/customerConsoleFixture';
import { silentLogger, testConfig, testDb } from '../helpers/env';
import { startFakeStripe, type FakeStripe } from '../helpers/fakeStripe';
import { serve } from '../helpers/servers';
import type { Browser } from '../helpers/customerConsole';

/**
 * Every page and action of the customer console (issue 26), walked from the
 * page kit's route registry, so a page added later is walked too: signed out,
 * as each role of account A (allowed areas answer, the others are a 403 page),
 * and with account B's ids in the URL or the form (refused, nothing of B shown,
 * no row of B changed). A route this file cannot build must fail it, unless
 * UNBUILDABLE names it with a reason.
 */
const dbConfig = testConfig();
const db = testDb(dbConfig);
const suite = dsrSuite(dbConfig, db);
let config: Config;
let fake: FakeStripe;
let base: string;
let close: () => Promise<void>;
let routes: readonly CustomerRoute[];
let A: ConsoleAccount;
let B: ConsoleAccount;

const PARAMS = ROUTE_PARAMS;

/** The form of each action, with the ids of `x` wherever a form could name a row or an account. */
const FORMS: Record<string, (x: ConsoleAccount) => Record<string, string>> = {
  '/app/security/sign-out-everywhere': (x) => ({ accountId: x.accountId, userId: x.members.owner.userId }),
  '/app/keys': (x) => ({ name: 'probe key', accountId: x.accountId, account_id: x.accountId, id: x.keyId }),
  '/app/keys/:id': () => ({ name: 'changed by a probe', limit: '0.01', rate_limit_rpm: '1' }),
  '/app/keys/:id/revoke': () => ({}),
  '/app/billing/top-up': (x) => ({ amount: '10', accountId: x.accountId }),
  '/app/billing/pay': (x) => ({ invoiceId: x.invoiceId }),
  '/app/alerts/settings': (x) => ({ low_balance_thresholds: '7.00', email_alerts: 'on', accountId: x.accountId }),
  '/app/alerts/webhooks': (x) => ({ url: 'https://hooks.example.com/probe', events: 'balance.low', accountId: x.accountId }),
  '/app/alerts/webhooks/:id/disable': () => ({}),
  '/app/alerts/webhooks/:id/enable': () => ({}),
  '/app/alerts/webhooks/:id/delete': () => ({}),
  '/app/alerts/deliveries/:id/redeliver': () => ({}),
  '/app/privacy/download': (x) => ({ format: 'portability', accountId: x.accountId }),
  '/app/privacy/requests': (x) => ({ type: 'objection', accountId: x.accountId, userId: x.members.owner.userId }),
  '/app/security/two-step/setup': (x) => ({ userId: x.members.owner.userId }),
  '/app/security/two-step/confirm': (x) => ({ code: '123456', userId: x.members.owner.userId }),
  '/app/security/two-step/recovery-codes': (x) => ({ code: '123456', userId: x.members.owner.userId }),
  '/app/security/two-step/disable': (x) => ({ code: '123456', password: 'correct horse battery staple', userId: x.members.owner.userId }),
  '/app/billing/details': (x) => ({ name: 'Renamed by a probe', vat_id: '', billing_email: 'probe@example.com', country: 'FR', accountId: x.accountId }),
  '/app/members/invite': (x) => ({ email: `probe-${x.label.toLowerCase()}@example.com`, role: 'owner', accountId: x.accountId }),
  '/app/members/invitations/:id/revoke': () => ({}),
  '/app/members/:id/role': () => ({ role: 'owner' }),
  '/app/members/:id/remove': () => ({}),
  '/app/policy/acknowledge': (x) => ({ version: '1', back: '/app', userId: x.members.owner.userId }),
};

/** Actions whose form (not their path) names a row: with another account's row they must be refused. */
const BODY_NAMES_A_ROW = new Set(['/app/billing/pay']);

/** Routes this file cannot build, each with the reason; anything else unbuildable fails the test. */
const UNBUILDABLE: Record<string, string> = {};

/** Pages that, for an allowed role in the fixture's state, answer with a redirect (where to, and why). */
const REDIRECTS: Record<string, { to: string; why: string }> = {
  'GET /app/security/two-step/setup': { to: '/app/security', why: 'shows a setup only after POST begins one' },
};

const keyOf = (r: CustomerRoute) => `${r.method} ${r.path}`;
const fill = (path: string, params: Record<string, string>) =>
  path.replace(/:(\w+)/g, (_m, name: string) => {
    if (params[name] === undefined) throw new Error(`no value for :${name} in ${path}`);
    return encodeURIComponent(params[name]);
  });
const hasParams = (r: CustomerRoute) => /:\w+/.test(r.path);
/** Not excluded, and its parameters and form are known (the registry test fails for the others). */
const buildable = (r: CustomerRoute) => !UNBUILDABLE[keyOf(r)] && (!hasParams(r) || PARAMS[r.path] !== undefined) && (r.method === 'GET' || FORMS[r.path] !== undefined);
const pathFor = (r: CustomerRoute, x: ConsoleAccount, role: ConsoleRole) => (hasParams(r) ? fill(r.path, PARAMS[r.path]!(x, role)) : r.path);
/** The path with a made-up id for each parameter, and the ids put in (B's, or the made-up ones). */
const madeUp = (r: CustomerRoute) => {
  const params = Object.fromEntries(Object.keys(PARAMS[r.path]!(A, 'owner')).map((k) => [k, randomUUID()]));
  return { path: fill(r.path, params), ids: Object.values(params) };
};
const sentIds = (r: CustomerRoute, x: ConsoleAccount, role: ConsoleRole) => (hasParams(r) ? Object.values(PARAMS[r.path]!(x, role)) : []);
/** A body with the given ids replaced: a refusal of B's row must read as the refusal of a made-up one. */
const withoutIds = (body: string, ids: string[]) => ids.reduce((b, id) => b.replaceAll(id, '<id>').replaceAll(encodeURIComponent(id), '<id>'), body);

/**
 * A digest of every row of an account, table by table: every table with an
 * account_id or user_id column (new tables are covered without a change here),
 * the account row and the endpoints' deliveries. Rows that change on every
 * request or sign-in (session last-seen, sign-in records) are left out.
 */
const VOLATILE = new Set(['customer_sessions', 'login_records', 'security_events', 'console_sign_in_attempts']);
let digestSql = '';
async function prepareDigest() {
  const rows = (
    await db.raw(`
    SELECT c.table_name AS name, bool_or(c.column_name = 'account_id') AS by_account, bool_or(c.column_name = 'user_id') AS by_user
      FROM information_schema.columns c
      JOIN pg_class k ON k.relname = c.table_name AND k.relkind IN ('r', 'p') AND NOT k.relispartition
      JOIN pg_namespace n ON n.oid = k.relnamespace AND n.nspname = c.table_schema
     WHERE c.table_schema = current_schema() AND c.column_name IN ('account_id', 'user_id')
     GROUP BY c.table_name ORDER BY c.table_name`)
  ).rows as { name: string; by_account: boolean; by_user: boolean }[];
  const parts = rows
    .filter((r) => !VOLATILE.has(r.name))
    .map((r) => {
      const where = [r.by_account ? 't.account_id = :account' : null, r.by_user ? 't.user_id IN (SELECT id FROM users WHERE account_id = :account)' : null].filter(Boolean).join(' OR ');
      return `SELECT '${r.name}' AS name, md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) AS digest FROM "${r.name}" t WHERE ${where}`;
    });
  parts.push(`SELECT 'accounts', md5(coalesce(string_agg(t::text, '|'), '')) FROM accounts t WHERE t.id = :account`);
  parts.push(
    `SELECT 'webhook_deliveries', md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM webhook_deliveries t WHERE t.endpoint_id IN (SELECT id FROM webhook_endpoints WHERE account_id = :account)`,
  );
  expect(rows.map((r) => r.name)).toEqual(expect.arrayContaining(['api_keys', 'users', 'invoices', 'webhook_endpoints', 'dsr_requests']));
  digestSql = parts.join('\nUNION ALL\n');
}
async function digest(x: ConsoleAccount): Promise<Record<string, string>> {
  const rows = (await db.raw(digestSql, { account: x.accountId })).rows as { name: string; digest: string }[];
  return Object.fromEntries(rows.map((r) => [r.name, r.digest]));
}

/**
 * Every answer an A user gets must show nothing of B. An id the request
 * itself carried may be echoed (a "not found" naming it tells nothing the
 * sender did not know); whether B's row exists must not show, which the
 * comparison with a made-up id checks.
 */
function showsNothingOf(other: ConsoleAccount, what: string, body: string, sent: string[] = []) {
  const seen = other.secrets.filter((s) => !sent.includes(s) && body.includes(s));
  expect(seen, `${what} shows ${other.label}'s data`).toEqual([]);
}

/** The members' signed-in browsers (an action may end a session: sign out everywhere). */
const sessions = {} as Record<ConsoleRole, { browser: Browser; csrf: string }>;
async function sessionOf(role: ConsoleRole) {
  const s = sessions[role];
  if ((await s.browser.get('/app')).status === 200) return s;
  sessions[role] = await signedInBrowser(base, A.members[role].email);
  return sessions[role];
}

beforeAll(async () => {
  fake = await startFakeStripe();
  config = testConfig({ TRUSTED_PROXIES: 'loopback', STRIPE_SECRET_KEY: fake.secretKey, STRIPE_API_URL: fake.url });
  const app = createAdminApp({
    db,
    billing: config.billing,
    config,
    clock: systemClock,
    logger: silentLogger,
    readiness: {},
    readyCheckTimeoutMs: 1000,
    temporal: { client: suite.client, taskQueue: config.temporal.taskQueue },
  });
  ({ url: base, close } = await serve(app));
  routes = customerRoutesOf(app);
  const consoleAccount = await consoleAccountFactory(db, config, base);
  A = await consoleAccount('Alpha');
  B = await consoleAccount('Bravo');
  for (const role of CONSOLE_ROLES) sessions[role] = { browser: A.members[role].browser, csrf: A.members[role].csrf };
  await prepareDigest();
});
afterAll(async () => {
  await close?.();
  await fake?.close();
});

describe('the route registry', () => {
  it('holds the console pages, and every route can be built (or is listed with a reason)', () => {
    console.info(`customer console routes (${String(routes.length)}):\n${routes.map((r) => `  ${keyOf(r)}  [${r.area}]`).join('\n')}`);
    expect(routes.map(keyOf)).toEqual(expect.arrayContaining(['GET /app', 'GET /app/security', 'GET /app/keys', 'GET /app/billing', 'GET /app/usage', 'GET /app/privacy', 'GET /app/alerts']));
    const unbuilt = routes.filter((r) => !UNBUILDABLE[keyOf(r)]).flatMap((r) => [
      ...(hasParams(r) && !PARAMS[r.path] ? [`${keyOf(r)}: no path parameters in PARAMS`] : []),
      ...(r.method === 'POST' && !FORMS[r.path] ? [`${keyOf(r)}: no form in FORMS`] : []),
    ]);
    expect(unbuilt, 'routes this test cannot build: add them to PARAMS/FORMS, or to UNBUILDABLE with a reason').toEqual([]);
    for (const k of Object.keys(UNBUILDABLE)) expect(routes.map(keyOf), `UNBUILDABLE names ${k}, which is no longer registered`).toContain(k);
  });
});

describe('signed out', () => {
  it('every page sends to the sign-in page and every action does nothing', async () => {
    const before = [await digest(A), await digest(B)];
    const anonymous = consoleBrowser(base);
    for (const r of routes.filter(buildable)) {
      const path = pathFor(r, A, 'owner');
      const res = r.method === 'GET' ? await anonymous.get(path) : await anonymous.post(path, FORMS[r.path]!(A));
      if (r.method === 'GET') {
        expect([res.status, res.location], keyOf(r)).toEqual([303, '/app/login']);
      } else {
        expect([303, 403], keyOf(r)).toContain(res.status);
        if (res.status === 303) expect(res.location, keyOf(r)).toBe('/app/login');
      }
      showsNothingOf(A, `${keyOf(r)} signed out`, res.body);
    }
    expect([await digest(A), await digest(B)]).toEqual(before);
  });
});

describe("each role of account A, on every page", () => {
  it("answers the pages of the role's areas, a 403 page for the others, and nothing of B with B's ids", async () => {
    const checked: string[] = [];
    for (const role of CONSOLE_ROLES) {
      const { browser } = await sessionOf(role);
      for (const r of routes.filter((x) => x.method === 'GET' && buildable(x))) {
        const own = await browser.get(pathFor(r, A, role));
        const redirect = REDIRECTS[keyOf(r)];
        if (redirect && mayUse(role, r.area)) expect([own.status, own.location], `${role} ${keyOf(r)}`).toEqual([303, redirect.to]);
        else expect(own.status, `${role} ${keyOf(r)}`).toBe(mayUse(role, r.area) ? 200 : 403);
        if (own.status === 403) expect(own.body).toContain('does not give access');
        showsNothingOf(B, `${role} ${keyOf(r)}`, own.body);
        if (hasParams(r)) {
          const theirs = await browser.get(pathFor(r, B, role));
          expect(theirs.status, `${role} ${keyOf(r)} with ${B.label}'s ids`).toBe(mayUse(role, r.area) ? 404 : 403);
          showsNothingOf(B, `${role} ${keyOf(r)} with ${B.label}'s ids`, theirs.body, sentIds(r, B, role));
          const none = madeUp(r);
          const nothing = await browser.get(none.path);
          expect([theirs.status, withoutIds(theirs.body, sentIds(r, B, role))], `${role} ${keyOf(r)}: B's id answers as a made-up one`).toEqual([nothing.status, withoutIds(nothing.body, none.ids)]);
        }
        checked.push(`${role} ${keyOf(r)}`);
      }
    }
    expect(checked.length).toBe(CONSOLE_ROLES.length * routes.filter((x) => x.method === 'GET' && buildable(x)).length);
  });
});

describe('each action', () => {
  it('a role not allowed gets a 403 page and changes no row of A or B', async () => {
    let refused = 0;
    for (const role of CONSOLE_ROLES) {
      for (const r of routes.filter((x) => x.method === 'POST' && buildable(x) && !mayUse(role, x.area))) {
        const { browser, csrf } = await sessionOf(role);
        const before = [await digest(A), await digest(B)];
        const res = await browser.post(pathFor(r, A, role), { _csrf: csrf, ...FORMS[r.path]!(A) });
        expect(res.status, `${role} ${keyOf(r)}`).toBe(403);
        expect(res.body).toContain('does not give access');
        expect([await digest(A), await digest(B)], `${role} ${keyOf(r)} changed rows`).toEqual(before);
        refused++;
      }
    }
    // The rules refuse something to someone (developers billing, billing members keys): this test cannot pass empty.
    expect(refused).toBeGreaterThan(0);
  });

  it('without the CSRF token, an allowed role changes nothing', async () => {
    for (const r of routes.filter((x) => x.method === 'POST' && buildable(x))) {
      const { browser } = await sessionOf('owner');
      const before = [await digest(A), await digest(B)];
      const res = await browser.post(pathFor(r, A, 'owner'), FORMS[r.path]!(A));
      expect(res.status, keyOf(r)).toBe(403);
      expect([await digest(A), await digest(B)], `${keyOf(r)} without CSRF changed rows`).toEqual(before);
    }
  });

  it("with B's ids, an allowed role of A is refused and no row of B changes", async () => {
    let withIds = 0;
    for (const role of CONSOLE_ROLES) {
      for (const r of routes.filter((x) => x.method === 'POST' && buildable(x) && mayUse(role, x.area))) {
        const { browser, csrf } = await sessionOf(role);
        const before = await digest(B);
        const res = await browser.post(pathFor(r, B, role), { _csrf: csrf, ...FORMS[r.path]!(B) });
        const what = `${role} ${keyOf(r)} with ${B.label}'s ids`;
        const sent = [...sentIds(r, B, role), ...Object.values(FORMS[r.path]!(B))];
        if (hasParams(r) || BODY_NAMES_A_ROW.has(r.path)) {
          expect([403, 404], what).toContain(res.status);
          withIds++;
          if (hasParams(r)) {
            const none = madeUp(r);
            const nothing = await browser.post(none.path, { _csrf: csrf, ...FORMS[r.path]!(B) });
            expect([res.status, withoutIds(res.body, sent)], `${what}: answers as a made-up id`).toEqual([nothing.status, withoutIds(nothing.body, [...none.ids, ...sent])]);
          }
        } else {
          // No row named: the action is the session account's own (or refused), never B's.
          expect(res.status, what).toBeLessThan(500);
        }
        showsNothingOf(B, what, res.body + res.location, sent);
        expect(await digest(B), `${what} changed rows of ${B.label}`).toEqual(before);
      }
    }
    expect(withIds).toBeGreaterThan(0);
  });
});
