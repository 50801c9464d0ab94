import { describe, expect, it } from 'vitest';
import { answerText, forwardText, normalisedName, outcomeOf, PROCESSOR_NOTICE } from '../../src/privacy/processorMode.rules';

describe('processor-mode rules', () => {
  it('decides the outcome from what was named and found', () => {
    expect(outcomeOf({ named: false, account: null })).toBe('not_named');
    expect(outcomeOf({ named: true, account: null })).toBe('customer_not_found');
    expect(outcomeOf({ named: true, account: { id: 'a', name: 'Acme', contact: null } })).toBe('no_contact');
    expect(outcomeOf({ named: true, account: { id: 'a', name: 'Acme', contact: 'p@acme.example' } })).toBe('forwarded');
  });

  it('every answer says we are a processor and kept no content; a forward names the customer', () => {
    for (const o of ['forwarded', 'customer_not_found', 'no_contact', 'not_named'] as const) {
      const t = answerText(o, 'P-1', 'Acme');
      expect(t).toContain(PROCESSOR_NOTICE);
      expect(t).toContain('P-1');
    }
    expect(answerText('forwarded', 'P-1', 'Acme')).toContain('forwarded your request to Acme');
  });

  it('not found and no contact read the same', () => {
    expect(answerText('customer_not_found', 'P-1', null)).toBe(answerText('no_contact', 'P-1', 'Acme'));
    expect(answerText('no_contact', 'P-1', 'Acme')).not.toContain('Acme');
  });

  it('the forward holds the reference, type, contact email and deadline only', () => {
    const m = forwardText('P-9', 'deletion', 'sam@example.com', '2027-01-05T00:00:00.000Z');
    expect(m.subject).toContain('P-9');
    expect(m.body).toContain('deletion');
    expect(m.body).toContain('sam@example.com');
    expect(m.body).toContain('2027-01-05T00:00:00.000Z');
  });

  it('matches names exactly: only trimmed, never folded', () => {
    expect(normalisedName('  Acme ')).toBe('Acme');
    expect(normalisedName('   ')).toBeUndefined();
    expect(normalisedName('acme')).toBe('acme');
  });
});
