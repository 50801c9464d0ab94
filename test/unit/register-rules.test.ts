import { describe, expect, it } from 'vitest';
import { EEA_COUNTRIES, NAMED_REGIONS, isCountryCode, missingRecipientFacts, withinRegion, type RecipientFacts } from '../../src/register/register.rules';

const complete: RecipientFacts = { role: 'sub_processor', countries: ['US'], transferMechanism: 'standard_contractual_clauses', sccDate: '2021-06-04', agreementRef: 'DPA-1' };

describe('missingRecipientFacts', () => {
  it('finds nothing missing in a complete entry', () => {
    expect(missingRecipientFacts(complete)).toEqual([]);
    expect(missingRecipientFacts({ ...complete, countries: ['DE', 'FR'], transferMechanism: 'not_needed', sccDate: null })).toEqual([]);
  });

  it('names every missing fact of an empty entry', () => {
    expect(missingRecipientFacts({ role: null, countries: [], transferMechanism: null, sccDate: null, agreementRef: null })).toEqual(['role', 'countries', 'transfer_mechanism', 'agreement_ref']);
  });

  it('flags standard contractual clauses without their date', () => {
    expect(missingRecipientFacts({ ...complete, sccDate: null })).toEqual(['scc_date']);
  });

  it('refuses "not needed" for a country outside the EEA', () => {
    expect(missingRecipientFacts({ ...complete, countries: ['DE', 'US'], transferMechanism: 'not_needed' })).toEqual(['transfer_mechanism (a country outside the EEA needs one)']);
  });
});

describe('countries and regions', () => {
  it('accepts only two capital letters as a country code', () => {
    expect(['DE', 'US'].every(isCountryCode)).toBe(true);
    expect(['de', 'DEU', 'D', '', 'D1', ' DE'].some(isCountryCode)).toBe(false);
  });

  it('holds the 30 EEA countries, the EU plus Iceland, Liechtenstein and Norway', () => {
    expect(EEA_COUNTRIES).toHaveLength(30);
    expect(new Set(EEA_COUNTRIES).size).toBe(30);
    expect(EEA_COUNTRIES).toEqual(expect.arrayContaining(['IS', 'LI', 'NO', 'DE', 'IE']));
    expect(EEA_COUNTRIES).not.toContain('GB');
    expect(NAMED_REGIONS.EEA).toBe(EEA_COUNTRIES);
  });

  it('keeps a recipient within a region only when every country is in it and it has some', () => {
    const eea = new Set(EEA_COUNTRIES);
    expect(withinRegion(['DE', 'IE'], eea)).toBe(true);
    expect(withinRegion(['DE', 'US'], eea)).toBe(false);
    expect(withinRegion([], eea)).toBe(false);
  });
});
