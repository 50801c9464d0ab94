import { describe, expect, it } from 'vitest';
import { customerVatIdProblem, EU_COUNTRIES, TaxDataError, taxTreatment, type TaxCustomer, type TaxRate } from '../../src/invoicing/tax.rules';

const DE = { country: 'DE' };

const RATES: TaxRate[] = [
  // Germany's temporary COVID-19 cut: 16% from 2020-07-01 to 2020-12-31.
  { country: 'DE', rate: '0.19', effectiveFrom: '2007-01-01', effectiveTo: '2020-07-01' },
  { country: 'DE', rate: '0.16', effectiveFrom: '2020-07-01', effectiveTo: '2021-01-01' },
  { country: 'DE', rate: '0.19', effectiveFrom: '2021-01-01', effectiveTo: null },
  { country: 'FR', rate: '0.20', effectiveFrom: '2014-01-01', effectiveTo: null },
  { country: 'LU', rate: '0.17', effectiveFrom: '2015-01-01', effectiveTo: '2023-01-01' },
  { country: 'LU', rate: '0.16', effectiveFrom: '2023-01-01', effectiveTo: '2024-01-01' },
  { country: 'LU', rate: '0.17', effectiveFrom: '2024-01-01', effectiveTo: null },
  { country: 'US', rate: '0.07', effectiveFrom: '2000-01-01', effectiveTo: null }, // must never be used
];

function customer(country: string | null, vatId: string | null = null, taxStatus: TaxCustomer['taxStatus'] = 'standard'): TaxCustomer {
  return { country, vatId, taxStatus };
}

describe('EU_COUNTRIES', () => {
  it('lists the 27 member states by ISO code', () => {
    expect(EU_COUNTRIES).toHaveLength(27);
    expect(new Set(EU_COUNTRIES).size).toBe(27);
    expect(EU_COUNTRIES).toContain('GR');
    expect(EU_COUNTRIES).toContain('HR');
    expect(EU_COUNTRIES).not.toContain('EL');
    expect(EU_COUNTRIES).not.toContain('GB');
    expect(EU_COUNTRIES).not.toContain('CH');
    for (const c of EU_COUNTRIES) expect(c).toMatch(/^[A-Z]{2}$/);
  });
});

describe('taxTreatment', () => {
  it('charges domestic VAT at the issuer country rate (DE 19%)', () => {
    expect(taxTreatment(customer('DE'), DE, RATES, '2026-10-31')).toEqual({ kind: 'domestic', rate: '0.19', country: 'DE', note: null });
  });

  it('charges domestic VAT to a domestic business with a VAT id as well', () => {
    expect(taxTreatment(customer('DE', 'DE123456789', 'reverse_charge'), DE, RATES, '2026-10-31')).toEqual({
      kind: 'domestic',
      rate: '0.19',
      country: 'DE',
      note: null,
    });
  });

  it('takes the rate in force at the tax date: effectiveFrom <= at < effectiveTo', () => {
    const rate = (at: string) => taxTreatment(customer('DE'), DE, RATES, at).rate;
    expect(rate('2020-06-30')).toBe('0.19');
    expect(rate('2020-07-01')).toBe('0.16'); // effectiveFrom is inclusive
    expect(rate('2020-12-31')).toBe('0.16');
    expect(rate('2021-01-01')).toBe('0.19'); // effectiveTo is exclusive
    // An instant counts by its UTC date: 23:30 at UTC-2 is already 1 July in UTC.
    expect(rate('2020-06-30T23:30:00-02:00')).toBe('0.16');
    expect(rate('2020-06-30T23:59:59.999Z')).toBe('0.19');
  });

  it('reverse-charges an EU business customer in another member state (DE -> FR with a VAT id)', () => {
    expect(taxTreatment(customer('FR', 'FR40303265045'), DE, RATES, '2026-10-31')).toEqual({
      kind: 'reverse_charge',
      rate: '0',
      country: 'FR',
      note: 'Reverse charge: VAT to be accounted for by the recipient under Article 196 of Council Directive 2006/112/EC. Customer VAT ID: FR40303265045',
    });
  });

  it('reverse-charges a customer marked reverse_charge, trimming its VAT id', () => {
    const t = taxTreatment(customer('FR', '  FR40303265045 ', 'reverse_charge'), DE, RATES, '2026-10-31');
    expect(t.kind).toBe('reverse_charge');
    expect(t.note).toMatch(/Customer VAT ID: FR40303265045$/);
  });

  it('refuses a reverse charge without a VAT id (the invoice must show it)', () => {
    expect(() => taxTreatment(customer('FR', null, 'reverse_charge'), DE, RATES, '2026-10-31')).toThrow(TaxDataError);
    expect(() => taxTreatment(customer('FR', '   ', 'reverse_charge'), DE, RATES, '2026-10-31')).toThrow(/no VAT id/);
  });

  it('charges an EU consumer without a VAT id at the customer country rate (OSS)', () => {
    const t = taxTreatment(customer('FR'), DE, RATES, '2026-10-31');
    expect(t.kind).toBe('eu_consumer');
    expect(t.rate).toBe('0.2'); // "0.20" normalised
    expect(t.country).toBe('FR');
    expect(t.note).toContain('FR (20%)');
    expect(t.note).toContain('One-Stop Shop');
    // An empty VAT id is no VAT id.
    expect(taxTreatment(customer('FR', ''), DE, RATES, '2026-10-31').kind).toBe('eu_consumer');
    // ... and at the customer country's rate in force at the date.
    expect(taxTreatment(customer('LU'), DE, RATES, '2023-06-30').rate).toBe('0.16');
    expect(taxTreatment(customer('LU'), DE, RATES, '2024-01-01').rate).toBe('0.17');
  });

  it('puts customers outside the EU outside the scope of EU VAT (US)', () => {
    const t = taxTreatment(customer('US'), DE, RATES, '2026-10-31');
    expect(t).toEqual({
      kind: 'outside_scope',
      rate: '0',
      country: 'US',
      note: "Outside the scope of EU VAT: the place of supply is the customer's country (US). No EU VAT charged.",
    });
    // A VAT id or reverse_charge status changes nothing outside the EU, and no rate is needed.
    expect(taxTreatment(customer('GB', 'GB123456789', 'reverse_charge'), DE, [], '2026-10-31').kind).toBe('outside_scope');
    expect(taxTreatment(customer('CH'), DE, [], '2026-10-31').kind).toBe('outside_scope');
  });

  it('charges no VAT to an exempt customer, wherever it is', () => {
    expect(taxTreatment(customer('DE', null, 'exempt'), DE, RATES, '2026-10-31')).toEqual({
      kind: 'exempt',
      rate: '0',
      country: 'DE',
      note: 'VAT exempt: the customer is exempt from VAT, no VAT charged.',
    });
    expect(taxTreatment(customer('IT', null, 'exempt'), DE, [], '2026-10-31').kind).toBe('exempt');
  });

  it('refuses a customer without a country', () => {
    expect(() => taxTreatment(customer(null), DE, RATES, '2026-10-31')).toThrow(TaxDataError);
    expect(() => taxTreatment(customer(''), DE, RATES, '2026-10-31')).toThrow(/no country/);
    // Even an exempt one: we still need to know where it is.
    expect(() => taxTreatment(customer(null, null, 'exempt'), DE, RATES, '2026-10-31')).toThrow(TaxDataError);
  });

  it('refuses when no rate is in force for a country that needs one', () => {
    expect(() => taxTreatment(customer('IT'), DE, RATES, '2026-10-31')).toThrow(TaxDataError); // no IT rate at all
    expect(() => taxTreatment(customer('IT'), DE, RATES, '2026-10-31')).toThrow(/no tax rate in force for IT on 2026-10-31/);
    expect(() => taxTreatment(customer('DE'), DE, RATES, '2006-12-31')).toThrow(/no tax rate in force for DE/);
    expect(() => taxTreatment(customer('DE'), DE, [], '2026-10-31')).toThrow(TaxDataError);
  });

  it('refuses overlapping rates rather than picking one', () => {
    const overlapping: TaxRate[] = [
      { country: 'DE', rate: '0.19', effectiveFrom: '2021-01-01', effectiveTo: null },
      { country: 'DE', rate: '0.20', effectiveFrom: '2026-01-01', effectiveTo: null },
    ];
    expect(() => taxTreatment(customer('DE'), DE, overlapping, '2026-10-31')).toThrow(/overlapping/);
    expect(taxTreatment(customer('DE'), DE, overlapping, '2025-12-31').rate).toBe('0.19');
  });

  it('refuses malformed and unknown country codes', () => {
    for (const bad of ['de', 'DEU', 'D', ' DE', 'XX', 'EL', 'ZZ']) {
      expect(() => taxTreatment(customer(bad), DE, RATES, '2026-10-31'), bad).toThrow(TaxDataError);
    }
    expect(() => taxTreatment(customer('EL'), DE, RATES, '2026-10-31')).toThrow(/use 'GR' for Greece/);
    expect(() => taxTreatment(customer('DE'), { country: 'de' }, RATES, '2026-10-31')).toThrow(TaxDataError);
  });

  it('assumes an EU issuer and refuses any other', () => {
    expect(() => taxTreatment(customer('US'), { country: 'US' }, RATES, '2026-10-31')).toThrow(/not an EU member state/);
  });

  it('refuses bad rates and dates', () => {
    const bad = (rate: string): TaxRate[] => [{ country: 'DE', rate, effectiveFrom: '2021-01-01', effectiveTo: null }];
    for (const rate of ['19%', '1.5', '-0.1', '1', 'abc', '']) {
      expect(() => taxTreatment(customer('DE'), DE, bad(rate), '2026-10-31'), rate).toThrow(TaxDataError);
    }
    expect(() => taxTreatment(customer('DE'), DE, RATES, '2026-02-30')).toThrow(TaxDataError);
    expect(() => taxTreatment(customer('US'), DE, RATES, '31/10/2026')).toThrow(TaxDataError);
    const backwards: TaxRate[] = [{ country: 'DE', rate: '0.19', effectiveFrom: '2021-01-01', effectiveTo: '2020-01-01' }];
    expect(() => taxTreatment(customer('DE'), DE, backwards, '2020-06-01')).toThrow(/before it starts/);
  });
});

describe('customerVatIdProblem', () => {
  it('accepts a VAT number of the account country, spaces and dots aside, and Greece as EL', () => {
    expect(customerVatIdProblem('DE123456789', 'DE')).toBeNull();
    expect(customerVatIdProblem('de 123.456.789', 'DE')).toBeNull();
    expect(customerVatIdProblem('EL123456789', 'GR')).toBeNull();
    expect(customerVatIdProblem('ATU12345678', 'AT')).toBeNull();
    // Outside the EU only the form is checked.
    expect(customerVatIdProblem('GB123456789', 'GB')).toBeNull();
  });
  it('refuses another EU country\'s prefix, a made-up value, and a too short or too long one', () => {
    expect(customerVatIdProblem('FR12345678901', 'DE')).toBe('a VAT id for DE starts with DE');
    expect(customerVatIdProblem('GR123456789', 'GR')).toBe('a VAT id for GR starts with EL');
    expect(customerVatIdProblem('123456789', 'DE')).toMatch(/country prefix/);
    expect(customerVatIdProblem('not a vat id', 'DE')).toBe('a VAT id for DE starts with DE');
    expect(customerVatIdProblem('DE1', 'DE')).toMatch(/country prefix/);
    expect(customerVatIdProblem(`DE${'1'.repeat(14)}`, 'DE')).toMatch(/country prefix/);
  });
});
