import { describe, expect, it } from 'vitest';
import { CheckoutRuleError, returnUrl, sessionEventOf, toMinor, topUpAmount } from '../../src/ledger/checkout.rules';
import { Money } from '../../src/shared/money.rules';

const bounds = { min: '5', max: '10000' };

describe('checkout rules', () => {
  it('takes a top-up amount to exact minor units per currency, half-cents and sub-yen refused', () => {
    expect(topUpAmount('25.50', 'USD', bounds).minor).toBe(2550);
    expect(topUpAmount('0.10', 'USD', { min: '0.01', max: '1' }).minor).toBe(10);
    expect(topUpAmount('500', 'JPY', bounds).minor).toBe(500);
    expect(() => topUpAmount('500.5', 'JPY', bounds)).toThrow(/more decimal places than JPY allows \(0\)/);
    expect(() => topUpAmount('5.005', 'EUR', bounds)).toThrow(CheckoutRuleError);
    expect(() => topUpAmount('25', 'XXX', bounds)).toThrow(/unsupported currency/);
  });

  it('refuses what the provider cannot take in one payment', () => {
    expect(toMinor(new Money('999999.99'), 'USD')).toBe(99_999_999);
    expect(() => toMinor(new Money('1000000'), 'USD')).toThrow(/bank transfer/);
  });

  it('keeps return addresses under the base URL, its path prefix included', () => {
    expect(returnUrl('https://x.example/mix', '/app/billing', '/app', 'successUrl')).toBe('https://x.example/mix/app/billing');
    expect(returnUrl('https://x.example/mix/', undefined, '/app?s={CHECKOUT_SESSION_ID}', 'successUrl')).toBe('https://x.example/mix/app?s={CHECKOUT_SESSION_ID}');
    expect(() => returnUrl('https://x.example/mix', 'https://x.example/other', '/app', 'successUrl')).toThrow(/successUrl must be on/);
    expect(() => returnUrl('https://x.example', 'https://x.example.evil/app', '/app', 'cancelUrl')).toThrow(CheckoutRuleError);
  });

  it('reads checkout.session events, and nothing else', () => {
    const account = '6f1c1f9e-8a43-4f55-9b7e-1f0d1b5e2a10';
    expect(sessionEventOf('checkout.session.completed', { id: 'cs_1', client_reference_id: account, metadata: { account_id: account }, payment_intent: 'pi_1' })).toEqual({
      sessionId: 'cs_1',
      checkoutId: account,
      accountId: account,
      paymentIntentId: 'pi_1',
      status: 'complete',
    });
    expect(sessionEventOf('checkout.session.completed', { id: '../etc' })).toBeUndefined();
    expect(sessionEventOf('payment_intent.succeeded', { id: 'cs_1' })).toBeUndefined();
  });
});
