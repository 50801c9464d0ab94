/**
 * A local stand-in for the payment provider's API: a real HTTP server on
 * 127.0.0.1 that speaks Stripe's PaymentIntents endpoints the way Stripe does,
 * for what MixRoute uses (the official `stripe` client points at it through
 * STRIPE_API_URL):
 *
 * - POST /v1/payment_intents (form-encoded, `metadata[key]=value`), with
 *   `Authorization: Bearer sk_...`; `Idempotency-Key` honoured: the same key
 *   with the same parameters returns the same intent (`Idempotent-Replayed:
 *   true`), with other parameters a 400 `idempotency_error`;
 * - GET /v1/payment_intents/:id.
 *
 * Answers are Stripe-shaped JSON (`pi_...` ids, `object: 'payment_intent'`,
 * amount, currency, status `requires_payment_method`, metadata, customer,
 * client_secret), errors `{ error: { type, message, param?, code? } }` with
 * Stripe's statuses (401 bad key, 400 bad parameters, 404 unknown intent).
 * Every call is recorded for assertions; `failNext` scripts transient
 * failures (a 500 api_error, or a dropped connection). stripe-mock keeps no
 * state (an intent it returns is not the one created), hence this server.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { listenTracking } from './servers';

export interface FakeIntent {
  id: string;
  object: 'payment_intent';
  amount: number;
  amount_received: number;
  currency: string;
  status: string;
  customer: string | null;
  description: string | null;
  metadata: Record<string, string>;
  client_secret: string;
  created: number;
  livemode: false;
}

export interface StripeCall {
  method: string;
  path: string;
  authorization: string | undefined;
  idempotencyKey: string | undefined;
  /** The decoded form body (metadata flattened as `metadata[key]`). */
  form: Record<string, string>;
  status: number;
}

export interface FakeStripe {
  url: string;
  /** The secret key it accepts. */
  secretKey: string;
  calls: StripeCall[];
  intents: Map<string, FakeIntent>;
  /** The next `n` requests fail: with a 500 api_error, or by dropping the connection before any answer. */
  failNext(n: number, how?: 'server_error' | 'drop'): void;
  /** A `payment_intent.succeeded` event for an intent (it becomes succeeded), as Stripe sends it to a webhook endpoint. */
  succeededEvent(intentId: string, opts?: { amountReceived?: number; created?: number }): Record<string, unknown>;
  close(): Promise<void>;
}

const stripeError = (res: ServerResponse, status: number, error: { type: string; message: string; param?: string; code?: string }) => {
  res.writeHead(status, { 'content-type': 'application/json', 'request-id': `req_${randomBytes(7).toString('hex')}` });
  res.end(JSON.stringify({ error }));
};

/** Stripe's form encoding: `a=1&metadata[k]=v`. Only flat fields and one level of brackets are used by us. */
function parseForm(body: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of new URLSearchParams(body)) out[k] = v;
  return out;
}

export async function startFakeStripe(opts: { secretKey?: string } = {}): Promise<FakeStripe> {
  const secretKey = opts.secretKey ?? `sk_test_${randomBytes(12).toString('hex')}`;
  const calls: StripeCall[] = [];
  const intents = new Map<string, FakeIntent>();
  // Idempotency-Key -> the parameters first sent and the intent created.
  const byKey = new Map<string, { params: string; intentId: string }>();
  const failures: ('server_error' | 'drop')[] = [];

  const handle = (req: IncomingMessage, res: ServerResponse, raw: string) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const form = req.method === 'POST' ? parseForm(raw) : {};
    const call: StripeCall = {
      method: req.method ?? '',
      path: url.pathname,
      authorization: req.headers.authorization,
      idempotencyKey: req.headers['idempotency-key'] as string | undefined,
      form,
      status: 0,
    };
    calls.push(call);
    const answer = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      call.status = status;
      res.writeHead(status, { 'content-type': 'application/json', 'request-id': `req_${randomBytes(7).toString('hex')}`, ...headers });
      res.end(JSON.stringify(body));
    };
    const fail = (status: number, error: Parameters<typeof stripeError>[2]) => {
      call.status = status;
      stripeError(res, status, error);
    };

    const failure = failures.shift();
    if (failure === 'drop') {
      call.status = -1;
      req.socket.destroy();
      return;
    }
    if (failure === 'server_error') return fail(500, { type: 'api_error', message: 'An unknown error occurred' });

    const auth = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '');
    if (!auth) return fail(401, { type: 'invalid_request_error', message: "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY')." });
    if (auth[1] !== secretKey) return fail(401, { type: 'invalid_request_error', message: `Invalid API Key provided: ${auth[1]!.slice(0, 8)}********${auth[1]!.slice(-4)}` });

    if (req.method === 'POST' && url.pathname === '/v1/payment_intents') {
      const key = call.idempotencyKey;
      const params = JSON.stringify(Object.entries(form).sort(([a], [b]) => a.localeCompare(b)));
      if (key) {
        const earlier = byKey.get(key);
        if (earlier) {
          if (earlier.params !== params) {
            return fail(400, {
              type: 'idempotency_error',
              message: `Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '${key}' if you meant to execute a different request.`,
            });
          }
          return answer(200, intents.get(earlier.intentId), { 'idempotent-replayed': 'true', 'original-request': 'req_earlier' });
        }
      }
      const amount = form.amount;
      if (amount === undefined) return fail(400, { type: 'invalid_request_error', message: 'Missing required param: amount.', param: 'amount', code: 'parameter_missing' });
      if (!/^\d+$/.test(amount)) return fail(400, { type: 'invalid_request_error', message: 'Invalid integer: ' + amount.slice(0, 40), param: 'amount', code: 'parameter_invalid_integer' });
      if (Number(amount) < 1 || Number(amount) > 99_999_999) {
        return fail(400, { type: 'invalid_request_error', message: 'Amount must be between 1 and 99999999.', param: 'amount', code: 'amount_too_large' });
      }
      const currency = form.currency;
      if (!currency) return fail(400, { type: 'invalid_request_error', message: 'Missing required param: currency.', param: 'currency', code: 'parameter_missing' });
      if (!/^[a-z]{3}$/.test(currency)) return fail(400, { type: 'invalid_request_error', message: `Invalid currency: ${currency.slice(0, 10)}.`, param: 'currency', code: 'parameter_invalid_string' });
      const metadata: Record<string, string> = {};
      for (const [k, v] of Object.entries(form)) {
        const m = /^metadata\[(.+)\]$/.exec(k);
        if (!m) continue;
        if (m[1]!.length > 40 || v.length > 500) return fail(400, { type: 'invalid_request_error', message: 'Metadata keys must be at most 40 characters and values at most 500.', param: k });
        metadata[m[1]!] = v;
      }
      const id = `pi_${randomBytes(12).toString('hex')}`;
      const intent: FakeIntent = {
        id,
        object: 'payment_intent',
        amount: Number(amount),
        amount_received: 0,
        currency,
        status: 'requires_payment_method',
        customer: form.customer ?? null,
        description: form.description ?? null,
        metadata,
        client_secret: `${id}_secret_${randomBytes(8).toString('hex')}`,
        created: Math.floor(Date.now() / 1000),
        livemode: false,
      };
      intents.set(id, intent);
      if (key) byKey.set(key, { params, intentId: id });
      return answer(200, intent);
    }
    const get = /^\/v1\/payment_intents\/([^/]+)$/.exec(url.pathname);
    if (req.method === 'GET' && get) {
      const intent = intents.get(decodeURIComponent(get[1]!));
      if (!intent) return fail(404, { type: 'invalid_request_error', message: `No such payment_intent: '${get[1]!.slice(0, 60)}'`, param: 'intent', code: 'resource_missing' });
      return answer(200, intent);
    }
    return fail(404, { type: 'invalid_request_error', message: `Unrecognized request URL (${req.method}: ${url.pathname.slice(0, 100)}).` });
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => handle(req, res, Buffer.concat(chunks).toString('utf8')));
  });
  const sockets = new Set<Socket>();
  const port = await listenTracking(server, sockets);

  return {
    url: `http://127.0.0.1:${port}`,
    secretKey,
    calls,
    intents,
    failNext(n, how = 'server_error') {
      for (let i = 0; i < n; i++) failures.push(how);
    },
    succeededEvent(intentId, o = {}) {
      const intent = intents.get(intentId);
      if (!intent) throw new Error(`no intent ${intentId}`);
      intent.status = 'succeeded';
      intent.amount_received = o.amountReceived ?? intent.amount;
      return {
        id: `evt_${randomBytes(12).toString('hex')}`,
        object: 'event',
        api_version: '2026-10-28.endive',
        created: o.created ?? Math.floor(Date.now() / 1000),
        type: 'payment_intent.succeeded',
        livemode: false,
        pending_webhooks: 1,
        data: { object: { ...intent, client_secret: undefined, amount_received: o.amountReceived ?? intent.amount } },
      };
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
