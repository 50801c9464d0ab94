import Stripe from 'stripe';

/**
 * The official Stripe client for the configured secret key, pointed at
 * STRIPE_API_URL when it is set (a local stand-in in tests and development).
 * `maxNetworkRetries`: 0 where an activity's retries are the retry mechanism
 * (visible in the workflow's history); 1 for a request made while a person
 * waits, safe with its idempotency key.
 */
export function stripeClient(stripe: { secretKey: string; apiUrl: string | undefined }, opts: { maxNetworkRetries: number }): Stripe {
  const options: Stripe.StripeConfig = { maxNetworkRetries: opts.maxNetworkRetries, timeout: 20_000, telemetry: false };
  if (stripe.apiUrl) {
    const url = new URL(stripe.apiUrl);
    const protocol = url.protocol === 'https:' ? 'https' : 'http';
    Object.assign(options, { host: url.hostname, port: url.port || (protocol === 'https' ? 443 : 80), protocol });
  }
  return new Stripe(stripe.secretKey, options);
}
