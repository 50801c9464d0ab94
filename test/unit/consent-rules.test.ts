import { describe, expect, it } from 'vitest';
import {
  analyticsAllowed,
  categoriesFromForm,
  formatConsentCookie,
  INITIAL_POLICY_VERSION,
  knownCategories,
  MAX_CONSENT_COOKIE,
  parseConsentCookie,
  policyVersionFrom,
  reconcile,
  routePatternOf,
  safeReturnPath,
  utcDay,
  type ConsentChoice,
} from '../../src/customerConsole/consent.rules';

const NOW = new Date('2026-12-05T10:00:00Z');
const at = (iso: string) => new Date(iso);
const choice = (categories: ConsentChoice['categories'], iso = '2026-12-01T00:00:00Z', version = '2026-11-01'): ConsentChoice => ({ version, categories, at: at(iso) });

describe('consent cookie', () => {
  it('round-trips a choice through its cookie value', () => {
    for (const c of [choice([]), choice(['analytics']), choice(['analytics'], '2026-12-05T09:59:59Z', 'v2.1_beta-3')]) {
      const v = formatConsentCookie(c);
      expect(v.length).toBeLessThanOrEqual(MAX_CONSENT_COOKIE);
      expect(parseConsentCookie(v, NOW)).toEqual(c);
    }
    expect(formatConsentCookie(choice([]))).toBe(`2026-11-01~necessary~${Date.UTC(2026, 11, 1) / 1000}`);
    expect(formatConsentCookie(choice(['analytics']))).toMatch(/^2026-11-01~analytics~\d+$/);
  });

  it('reads anything it would not have written as no choice', () => {
    const t = Date.UTC(2026, 11, 1) / 1000;
    for (const bad of [
      null,
      undefined,
      '',
      'yes',
      `2026-11-01~analytics`,
      `2026-11-01~tracking~${t}`, // unknown category
      `2026-11-01~analytics+marketing~${t}`,
      `2026-11-01~analytics+analytics~${t}`, // repeated
      `2026-11-01~necessary+analytics~${t}`,
      `2026-11-01~~${t}`,
      `-bad~analytics~${t}`, // version shape
      `${'v'.repeat(41)}~analytics~${t}`,
      `2026-11-01~analytics~${t} `,
      `2026-11-01~ANALYTICS~${t}`,
      `2026-11-01~analytics~${Date.UTC(2019, 0, 1) / 1000}`, // before 2020
      `2026-11-01~analytics~${NOW.getTime() / 1000 + 3600}`, // in the future
      `2026-11-01~analytics~${'9'.repeat(13)}`,
      `2026-11-01~analytics~${t}${'0'.repeat(100)}`, // oversized
    ]) {
      expect(parseConsentCookie(bad, NOW), String(bad)).toBeNull();
    }
  });

  it('knows only its categories, once each', () => {
    expect(knownCategories([])).toEqual([]);
    expect(knownCategories(['analytics'])).toEqual(['analytics']);
    expect(knownCategories(['analytics', 'analytics'])).toBeNull();
    expect(knownCategories(['ads'])).toBeNull();
    expect(categoriesFromForm('analytics')).toEqual(['analytics']);
    expect(categoriesFromForm('necessary')).toEqual([]);
    for (const bad of ['', 'all', ['analytics'], undefined, 1]) expect(categoriesFromForm(bad)).toBeNull();
    expect(analyticsAllowed(null)).toBe(false);
    expect(analyticsAllowed(choice([]))).toBe(false);
    expect(analyticsAllowed(choice(['analytics']))).toBe(true);
  });

  it('uses the latest published policy version, else the initial one', () => {
    expect(policyVersionFrom('2027-01-15')).toBe('2027-01-15');
    expect(policyVersionFrom(null)).toBe(INITIAL_POLICY_VERSION);
    expect(policyVersionFrom('not a version!')).toBe(INITIAL_POLICY_VERSION);
  });
});

describe('squaring the browser with the records', () => {
  const older = choice(['analytics'], '2026-12-01T00:00:00Z');
  const newer = choice([], '2026-12-03T00:00:00Z');

  it('records a choice made before there was a record, and keeps an agreeing cookie as it is', () => {
    expect(reconcile(older, null)).toEqual({ record: older, cookie: null });
    expect(reconcile(null, null)).toEqual({ record: null, cookie: null });
    expect(reconcile(older, { ...older, at: at('2026-12-04T00:00:00Z') })).toEqual({ record: null, cookie: null });
  });

  it('lets the newer of the two stand', () => {
    expect(reconcile(null, newer)).toEqual({ record: null, cookie: newer });
    expect(reconcile(older, newer)).toEqual({ record: null, cookie: newer }); // withdrawn elsewhere: stops here too
    expect(reconcile(newer, older)).toEqual({ record: newer, cookie: null });
    // A tie goes to the record: nothing is recorded twice.
    expect(reconcile(choice([], '2026-12-01T00:00:00Z'), older)).toEqual({ record: null, cookie: older });
  });
});

describe('page names and return paths', () => {
  const patterns = ['/app', '/app/keys', '/app/keys/:id', '/app/usage', '/app/files/*rest'];

  it('names a page by its route pattern, never by the address', () => {
    expect(routePatternOf('/app', patterns)).toBe('/app');
    expect(routePatternOf('/app/', patterns)).toBe('/app');
    expect(routePatternOf('/app/keys', patterns)).toBe('/app/keys');
    expect(routePatternOf('/APP/Keys/', patterns)).toBe('/app/keys');
    expect(routePatternOf('/app/keys/0b7f5a8e-1111-2222-3333-444455556666', patterns)).toBe('/app/keys/:id');
    expect(routePatternOf('/app/keys/secret-value', patterns)).toBe('/app/keys/:id');
    expect(routePatternOf('/app/keys//', patterns)).toBeNull();
    expect(routePatternOf('/app/nope', patterns)).toBeNull();
    expect(routePatternOf('/app/files/a/b', patterns)).toBeNull(); // syntax it does not understand matches nothing
    expect(routePatternOf(`/app/${'x'.repeat(600)}`, patterns)).toBeNull();
  });

  it('returns only to a path of the fixed list', () => {
    const allowed = ['/app', '/app/keys', '/app/login'];
    expect(safeReturnPath('/app/keys', allowed)).toBe('/app/keys');
    for (const bad of ['https://evil.example/', '//evil.example', '/app/keys?x=1', '/app/../evil', '/\\evil.example', '/app/keys/', undefined, ['/app/keys']]) {
      expect(safeReturnPath(bad, allowed)).toBe('/app');
    }
  });

  it('keys counts by UTC day', () => {
    expect(utcDay(new Date('2026-12-05T23:59:59-05:00'))).toBe('2026-12-06');
  });
});
