/**
 * VAT treatment of an invoice. Pure: no I/O, no clock (the tax date is passed in), no
 * Node built-ins, so workflows may import it.
 *
 * Tax rules (MixRoute sells electronically supplied services, B2B and B2C):
 * - The issuer is assumed to be established in the EU (its country must be one of
 *   EU_COUNTRIES, else TaxDataError). A non-EU issuer needs different rules.
 * - Country codes are ISO 3166-1 alpha-2, upper case (/^[A-Z]{2}$/, and an assigned
 *   code): 'GR' for Greece, not the VAT prefix 'EL'. Anything else is a TaxDataError.
 * - In this order:
 *   1. no customer country                    -> TaxDataError (we cannot know the place of supply);
 *   2. taxStatus 'exempt'                     -> exempt, rate 0;
 *   3. customer country = issuer country      -> domestic, at the issuer country's rate in force
 *                                                (a domestic B2B customer pays VAT too);
 *   4. other EU country, with a VAT id or taxStatus 'reverse_charge'
 *                                             -> reverse charge, rate 0, with the Article 196 note
 *                                                and the customer's VAT id (a reverse charge without
 *                                                a VAT id is a TaxDataError: Article 226(4) requires
 *                                                the id on the invoice);
 *   5. other EU country, no VAT id            -> eu_consumer, at the customer country's rate in force
 *                                                (One-Stop Shop);
 *   6. a country outside the EU               -> outside_scope, rate 0 (place of supply is the
 *                                                customer's country).
 * - "In force at `at`": effectiveFrom <= at < effectiveTo (effectiveTo null = open-ended),
 *   compared as UTC calendar dates. No rate in force for a country that needs one, or
 *   two overlapping rates, is a TaxDataError: the invoice is not built on a guess.
 * - Rates are decimal fractions as strings ("0.19"), 0 <= rate < 1; the treatment carries
 *   the rate in canonical form (toAmountString: "0.190" -> "0.19").
 */
import { isDecimalString, parseAmount, toAmountString } from '../shared/money.rules';

/** ISO alpha-2 codes of the 27 EU member states. */
export const EU_COUNTRIES: readonly string[] = Object.freeze([
  'AT', 'BE', 'BG', 'CY', 'CZ', 'DE', 'DK', 'EE', 'ES', 'FI', 'FR', 'GR', 'HR', 'HU',
  'IE', 'IT', 'LT', 'LU', 'LV', 'MT', 'NL', 'PL', 'PT', 'RO', 'SE', 'SI', 'SK',
]);

/** The 249 officially assigned ISO 3166-1 alpha-2 codes, plus XK (Kosovo, user-assigned but in common use). */
const ISO_COUNTRIES: ReadonlySet<string> = new Set(
  (
    'AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ ' +
    'CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET ' +
    'FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ' +
    'ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY ' +
    'MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM ' +
    'PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW ' +
    'SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ ' +
    'UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW XK'
  ).split(' '),
);

const EU_SET: ReadonlySet<string> = new Set(EU_COUNTRIES);

export interface TaxRate {
  country: string;
  /** Decimal fraction, e.g. "0.19". */
  rate: string;
  /** ISO date (or instant) from which the rate applies, inclusive. */
  effectiveFrom: string;
  /** ISO date (or instant) at which the rate stops applying, exclusive; null = still in force. */
  effectiveTo: string | null;
}

export interface TaxCustomer {
  country: string | null;
  vatId: string | null;
  taxStatus: 'standard' | 'exempt' | 'reverse_charge';
}

/** The seller. Assumed to be established in the EU. */
export interface TaxIssuer {
  country: string;
}

export type TaxTreatment =
  | { kind: 'domestic'; rate: string; country: string; note: null }
  | { kind: 'eu_consumer'; rate: string; country: string; note: string }
  | { kind: 'reverse_charge'; rate: '0'; country: string; note: string }
  | { kind: 'outside_scope'; rate: '0'; country: string; note: string }
  | { kind: 'exempt'; rate: '0'; country: string; note: string };

/** Bad tax data: no country, an unknown country code, no (or an ambiguous) rate in force where one is needed. */
export class TaxDataError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TaxDataError';
  }
}

export const REVERSE_CHARGE_NOTE =
  'Reverse charge: VAT to be accounted for by the recipient under Article 196 of Council Directive 2006/112/EC.';

export function isEuCountry(country: string): boolean {
  return EU_SET.has(country);
}

function checkCountry(value: unknown, who: string): string {
  if (typeof value !== 'string' || !/^[A-Z]{2}$/.test(value)) {
    throw new TaxDataError(`${who} country must be an ISO 3166-1 alpha-2 code in upper case, got ${JSON.stringify(value)}`);
  }
  if (!ISO_COUNTRIES.has(value)) {
    const hint = value === 'EL' ? " (use 'GR' for Greece: EL is only its VAT prefix)" : '';
    throw new TaxDataError(`${who} country ${value} is not a known ISO 3166-1 country code${hint}`);
  }
  return value;
}

const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;

/**
 * The UTC calendar date (YYYY-MM-DD) of an ISO date or instant; throws `make(message)`
 * on anything else, including impossible dates such as 2026-02-30.
 */
export function utcDate(value: string, what: string, make: (message: string) => Error = (m) => new Error(m)): string {
  if (typeof value === 'string') {
    const d = ISO_DATE.exec(value);
    if (d) {
      const [, y, m, day] = d;
      const t = new Date(Date.UTC(Number(y), Number(m) - 1, Number(day)));
      // Date.UTC maps years 0-99 to 1900+; setUTCFullYear keeps the year as written.
      t.setUTCFullYear(Number(y));
      if (t.getUTCFullYear() === Number(y) && t.getUTCMonth() === Number(m) - 1 && t.getUTCDate() === Number(day)) return value;
    } else if (ISO_INSTANT.test(value)) {
      const date = value.slice(0, 10);
      utcDate(date, what, make); // the calendar part must be a real date
      const ms = Date.parse(value);
      if (Number.isFinite(ms)) return new Date(ms).toISOString().slice(0, 10);
    }
  }
  throw make(`${what} must be an ISO date (YYYY-MM-DD) or instant, got ${JSON.stringify(value)}`);
}

function checkRate(value: unknown, country: string): string {
  if (typeof value !== 'string' || !isDecimalString(value)) {
    throw new TaxDataError(`tax rate for ${country} must be a decimal fraction string, got ${JSON.stringify(value)}`);
  }
  const rate = parseAmount(value);
  if (rate.isNegative() || rate.gte(1)) {
    throw new TaxDataError(`tax rate for ${country} must be a fraction in [0, 1), got ${value}`);
  }
  return rate.isZero() ? '0' : toAmountString(rate);
}

/** The rate in force for `country` at the UTC date `at` (effectiveFrom <= at < effectiveTo). */
export function rateInForce(rates: readonly TaxRate[], country: string, at: string): string {
  const day = utcDate(at, 'tax date', (m) => new TaxDataError(m));
  const matches: TaxRate[] = [];
  for (const r of rates) {
    if (r.country !== country) continue;
    const from = utcDate(r.effectiveFrom, `effectiveFrom of the ${country} rate`, (m) => new TaxDataError(m));
    const to = r.effectiveTo === null ? null : utcDate(r.effectiveTo, `effectiveTo of the ${country} rate`, (m) => new TaxDataError(m));
    if (to !== null && to <= from) {
      throw new TaxDataError(`tax rate for ${country} from ${r.effectiveFrom} ends (${r.effectiveTo}) before it starts`);
    }
    if (from <= day && (to === null || day < to)) matches.push(r);
  }
  if (matches.length === 0) throw new TaxDataError(`no tax rate in force for ${country} on ${day}`);
  if (matches.length > 1) {
    throw new TaxDataError(`${matches.length} overlapping tax rates in force for ${country} on ${day}`);
  }
  return checkRate(matches[0]!.rate, country);
}

/** Formats a decimal fraction as a percentage for notes ("0.055" -> "5.5%"). */
export function formatRatePercent(rate: string): string {
  return `${toAmountString(parseAmount(rate).mul(100))}%`;
}

/**
 * Why a VAT id a customer enters for an EU country is not acceptable, or null.
 * A VAT id turns a supply to another EU country into a reverse charge at 0 %,
 * so one typed by the customer must at least have the form of a VAT number of
 * their own country: its prefix (EL for Greece), then 2 to 13 letters or
 * digits. Whether the number exists is not checked (that needs VIES).
 */
export function customerVatIdProblem(vatId: string, country: string): string | null {
  const v = vatId.replace(/[\s.-]/g, '').toUpperCase();
  if (!/^[A-Z]{2}[0-9A-Z+*]{2,13}$/.test(v)) return 'a VAT id is the country prefix and 2 to 13 letters or digits, such as DE123456789';
  if (isEuCountry(country)) {
    const prefix = country === 'GR' ? 'EL' : country;
    if (!v.startsWith(prefix)) return `a VAT id for ${country} starts with ${prefix}`;
  }
  return null;
}

function normaliseVatId(vatId: string | null): string | null {
  if (vatId === null || vatId === undefined) return null;
  const trimmed = String(vatId).trim();
  return trimmed === '' ? null : trimmed;
}

/**
 * The VAT treatment of a supply to `customer` by `issuer`, taxed at the date `at`
 * (an ISO date or instant, e.g. the last day of the billing period). See the rules at the top.
 */
export function taxTreatment(customer: TaxCustomer, issuer: TaxIssuer, rates: readonly TaxRate[], at: string): TaxTreatment {
  const issuerCountry = checkCountry(issuer.country, 'issuer');
  if (!isEuCountry(issuerCountry)) {
    throw new TaxDataError(`issuer country ${issuerCountry} is not an EU member state: these tax rules assume an EU issuer`);
  }
  if (customer.country === null || customer.country === undefined || customer.country === '') {
    throw new TaxDataError('customer has no country: the place of supply cannot be determined');
  }
  const country = checkCountry(customer.country, 'customer');
  const vatId = normaliseVatId(customer.vatId);
  // Validate the date even where no rate is looked up: a bad date is a bug wherever it is.
  utcDate(at, 'tax date', (m) => new TaxDataError(m));

  switch (customer.taxStatus) {
    case 'standard':
    case 'exempt':
    case 'reverse_charge':
      break;
    default:
      throw new TaxDataError(`unknown tax status ${JSON.stringify(customer.taxStatus)}`);
  }

  if (customer.taxStatus === 'exempt') {
    return { kind: 'exempt', rate: '0', country, note: 'VAT exempt: the customer is exempt from VAT, no VAT charged.' };
  }

  if (country === issuerCountry) {
    return { kind: 'domestic', rate: rateInForce(rates, issuerCountry, at), country, note: null };
  }

  if (isEuCountry(country)) {
    if (vatId !== null || customer.taxStatus === 'reverse_charge') {
      if (vatId === null) {
        throw new TaxDataError(`customer in ${country} is marked reverse_charge but has no VAT id, which a reverse-charge invoice must show`);
      }
      return { kind: 'reverse_charge', rate: '0', country, note: `${REVERSE_CHARGE_NOTE} Customer VAT ID: ${vatId}` };
    }
    const rate = rateInForce(rates, country, at);
    return {
      kind: 'eu_consumer',
      rate,
      country,
      note: `VAT charged at the rate of the customer's member state ${country} (${formatRatePercent(rate)}), declared under the EU One-Stop Shop (OSS).`,
    };
  }

  return {
    kind: 'outside_scope',
    rate: '0',
    country,
    note: `Outside the scope of EU VAT: the place of supply is the customer's country (${country}). No EU VAT charged.`,
  };
}
