import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/errors';
import { addModelInput, createAccountInput, createUserInput } from '../../src/staff/schemas';
import { validate } from '../../src/shared/validate';

function errorOf(fn: () => unknown): ValidationError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ValidationError) return err;
    throw err;
  }
  throw new Error('expected a ValidationError');
}

describe('staff input validation', () => {
  it('applies defaults and normalises the country code', () => {
    const a = validate(createAccountInput, { name: ' Acme ', country: 'de' });
    expect(a).toMatchObject({ name: 'Acme', country: 'DE', plan: 'prepaid', creditLimit: '0', currency: 'USD' });
  });

  it('names every bad field in one error', () => {
    const err = errorOf(() => validate(createAccountInput, { name: '', plan: 'free', country: 'Germany', creditLimit: '-5' }));
    expect(err.fieldErrors.map((e) => e.field).sort()).toEqual(['country', 'creditLimit', 'name', 'plan']);
  });

  it('refuses money as a JSON number, which may already have lost precision', () => {
    const err = errorOf(() =>
      validate(addModelInput, { name: 'm', provider: 'p', upstreamModel: 'u', inputPerMtok: 0.15, outputPerMtok: '0.60' }),
    );
    expect(err.fieldErrors).toEqual([{ field: 'inputPerMtok', message: expect.stringContaining('decimal string') }]);
  });

  it('refuses unknown fields instead of ignoring them', () => {
    const err = errorOf(() => validate(createUserInput, { accountId: '00000000-0000-4000-8000-000000000000', name: 'A', email: 'a@example.com', role: 'x' }));
    expect(err.message).toContain('role');
  });
});
