import { systemClock, type Clock } from '../clock';
import type { Db } from '../db/knex';
import { countPageView, insertRecord, latestPolicyVersion, latestRecordOf, pageViewCounts, recordsOf, type CookieRecordRow } from './consent.data';
import {
  analyticsAllowed,
  COOKIE_PURPOSE,
  knownCategories,
  policyVersionFrom,
  reconcile,
  utcDay,
  type ConsentCategory,
  type ConsentChoice,
} from './consent.rules';
import type { CustomerSession } from './customerConsole.service';

/**
 * Cookie consent and first-party page analytics of the customer console
 * (issue 26). The browser keeps the choice in a cookie; a signed-in user's
 * choices are also consent records (purpose 'cookies': the policy version,
 * the categories, the time). Page views are counted per day and route
 * pattern only, and only when analytics were agreed to: no user, session or
 * address is written.
 */
export interface ConsentServiceDeps {
  db: Db;
  clock?: Clock;
}

const HISTORY_LIMIT = 50;

/** A stored record as a choice; a record whose categories this version no longer knows counts as necessary-only. */
const choiceOf = (r: CookieRecordRow): ConsentChoice => ({ version: r.policy_version ?? '', categories: knownCategories(r.categories ?? []) ?? [], at: new Date(r.at) });

export function consentService({ db, clock = systemClock }: ConsentServiceDeps) {
  const record = (userId: string, c: ConsentChoice) =>
    insertRecord(db, { user_id: userId, purpose: COOKIE_PURPOSE, granted: analyticsAllowed(c), categories: c.categories, policy_version: c.version, source: 'console', at: clock.now() });

  return {
    now: () => clock.now(),

    /** A choice made now (in the banner or on the settings page); recorded when someone is signed in. */
    async choose(s: Pick<CustomerSession, 'userId'> | null, categories: ConsentCategory[]): Promise<ConsentChoice> {
      const now = clock.now();
      const choice: ConsentChoice = { version: policyVersionFrom(await latestPolicyVersion(db)), categories, at: new Date(Math.floor(now.getTime() / 1000) * 1000) };
      if (s) await record(s.userId, choice);
      return choice;
    },

    /**
     * A signed-in page view: squares the browser's choice with the user's
     * latest record (see reconcile). Records a choice made before signing in;
     * returns the choice that stands and whether the cookie must be rewritten.
     */
    async squareWithRecords(s: Pick<CustomerSession, 'userId'>, cookie: ConsentChoice | null): Promise<{ choice: ConsentChoice | null; rewrite: boolean }> {
      const latest = await latestRecordOf(db, s.userId, COOKIE_PURPOSE);
      const r = reconcile(cookie, latest && latest.policy_version ? choiceOf(latest) : null);
      if (r.record) await record(s.userId, r.record);
      return r.cookie ? { choice: r.cookie, rewrite: true } : { choice: cookie, rewrite: false };
    },

    /** Counts a view of `page` (a route pattern) today; nothing without agreement to analytics. */
    async countView(choice: ConsentChoice | null, page: string): Promise<void> {
      if (!analyticsAllowed(choice)) return;
      await countPageView(db, utcDay(clock.now()), page);
    },

    /** The user's cookie choices, newest first. */
    async history(s: Pick<CustomerSession, 'userId'>) {
      return (await recordsOf(db, s.userId, COOKIE_PURPOSE, HISTORY_LIMIT)).map((r) => ({
        at: new Date(r.at).toISOString(),
        version: r.policy_version ?? '',
        categories: r.categories ?? [],
        granted: r.granted,
      }));
    },

    /** Aggregated page views of the last `days` UTC days, for staff. */
    async pageViews(days: number, limit = 500) {
      const now = clock.now();
      return pageViewCounts(db, utcDay(new Date(now.getTime() - (days - 1) * 86_400_000)), utcDay(now), limit);
    },
  };
}
export type ConsentService = ReturnType<typeof consentService>;
