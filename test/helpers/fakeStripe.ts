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
 * - GET /v1/payment_intents/:id;
 * - POST /v1/checkout/sessions (mode 'payment', one `line_items[0][price_data]`
 *   line, `payment_intent_data[metadata][key]`, `metadata[key]`,
 *   `client_reference_id`, `success_url`, `cancel_url`, `expires_at`,
 *   `customer`; `Idempotency-Key` honoured as above) and
 *   GET /v1/checkout/sessions/:id. A session is `open` with no PaymentIntent
 *   until the test pays it (`paySession`): then it is `complete`, its
 *   PaymentIntent exists (succeeded, with the session's
 *   payment_intent_data metadata) and the events Stripe would send are
 *   returned for the test to sign and deliver.
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

export interface FakeCheckoutSession {
  id: string;
  object: 'checkout.session';
  mode: string;
  status: 'open' | 'complete' | 'expired';
  payment_status: 'unpaid' | 'paid';
  url: string | null;
  amount_total: number;
  currency: string;
  customer: string | null;
  client_reference_id: string | null;
  metadata: Record<string, string>;
  payment_intent: string | null;
  success_url: string;
  cancel_url: string | null;
  expires_at: number;
  created: number;
  livemode: false;
  /** Not part of Stripe's answer: what the PaymentIntent will carry. */
  _payment_intent_data: { metadata: Record<string, string>; description: string | null };
  _line_name: string | null;
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
  sessions: Map<string, FakeCheckoutSession>;
  /**
   * The customer pays a session on the provider's page: it becomes complete,
   * its PaymentIntent is made (succeeded, with the session's
   * payment_intent_data metadata and customer), and the events Stripe sends
   * are returned: `payment_intent.succeeded` and `checkout.session.completed`.
   */
  paySession(sessionId: string): { paymentIntentId: string; paymentSucceeded: Record<string, unknown>; sessionCompleted: Record<string, unknown> };
  /** The session expires unpaid: its `checkout.session.expired` event. */
  expireSession(sessionId: string): Record<string, unknown>;
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

/** `a[b][c]=v` keys of a form under `prefix[`: `{ 'b][c': v }` flattened to the bracket path after the prefix. */
function bracketed(form: Record<string, string>, prefix: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(form)) {
    if (!k.startsWith(`${prefix}[`) || !k.endsWith(']')) continue;
    out[k.slice(prefix.length + 1, -1)] = v;
  }
  return out;
}

const event = (type: string, object: unknown) => ({
  id: `evt_${randomBytes(12).toString('hex')}`,
  object: 'event',
  api_version: '2026-10-28.endive',
  created: Math.floor(Date.now() / 1000),
  type,
  livemode: false,
  pending_webhooks: 1,
  data: { object },
});

/** The session as Stripe answers it: without what only the stand-in keeps. */
const publicSession = (s: FakeCheckoutSession) => {
  const rest: Partial<FakeCheckoutSession> = { ...s };
  delete rest._payment_intent_data;
  delete rest._line_name;
  return rest;
};

export async function startFakeStripe(opts: { secretKey?: string } = {}): Promise<FakeStripe> {
  const secretKey = opts.secretKey ?? `sk_test_${randomBytes(12).toString('hex')}`;
  const calls: StripeCall[] = [];
  const intents = new Map<string, FakeIntent>();
  // Idempotency-Key -> the parameters first sent and the intent created.
  const byKey = new Map<string, { params: string; intentId: string }>();
  const failures: ('server_error' | 'drop')[] = [];
  const sessions = new Map<string, FakeCheckoutSession>();
  const sessionByKey = new Map<string, { params: string; sessionId: string }>();
  let baseUrl = '';

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
    if (req.method === 'POST' && url.pathname === '/v1/checkout/sessions') {
      const key = call.idempotencyKey;
      const params = JSON.stringify(Object.entries(form).sort(([a], [b]) => a.localeCompare(b)));
      if (key) {
        const earlier = sessionByKey.get(key);
        if (earlier) {
          if (earlier.params !== params) {
            return fail(400, { type: 'idempotency_error', message: `Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '${key}' if you meant to execute a different request.` });
          }
          return answer(200, publicSession(sessions.get(earlier.sessionId)!), { 'idempotent-replayed': 'true', 'original-request': 'req_earlier' });
        }
      }
      const invalid = (param: string, message: string, code = 'parameter_invalid') => fail(400, { type: 'invalid_request_error', message, param, code });
      if (form.mode !== 'payment') return invalid('mode', 'Missing or unsupported mode (this stand-in knows `payment`).', 'parameter_missing');
      if (!form.success_url || !/^https?:\/\//.test(form.success_url)) return invalid('success_url', 'Not a valid URL', 'url_invalid');
      if (form.cancel_url !== undefined && !/^https?:\/\//.test(form.cancel_url)) return invalid('cancel_url', 'Not a valid URL', 'url_invalid');
      if (Object.keys(form).some((k) => /^line_items\[[1-9]/.test(k))) return invalid('line_items', 'This stand-in takes one line item.');
      const line = bracketed(form, 'line_items[0]');
      const unit = line['price_data][unit_amount'];
      const currency = line['price_data][currency'];
      const quantity = line.quantity ?? '1';
      if (!unit || !/^\d+$/.test(unit) || Number(unit) < 1 || Number(unit) > 99_999_999) return invalid('line_items[0][price_data][unit_amount]', 'Invalid integer or amount out of range.', 'parameter_invalid_integer');
      if (!currency || !/^[a-z]{3}$/.test(currency)) return invalid('line_items[0][price_data][currency]', 'Invalid currency.');
      if (quantity !== '1') return invalid('line_items[0][quantity]', 'This stand-in takes quantity 1.');
      const metadata = bracketed(form, 'metadata');
      const piMetadata = bracketed(form, 'payment_intent_data[metadata]');
      for (const [k, v] of Object.entries({ ...metadata, ...piMetadata })) {
        if (k.length > 40 || v.length > 500) return invalid('metadata', 'Metadata keys must be at most 40 characters and values at most 500.');
      }
      const created = Math.floor(Date.now() / 1000);
      const expiresAt = form.expires_at !== undefined ? Number(form.expires_at) : created + 86_400;
      if (!Number.isInteger(expiresAt) || expiresAt < created + 1_800 - 60 || expiresAt > created + 86_400 + 60) return invalid('expires_at', 'The expires_at timestamp must be between 30 minutes and 24 hours from now.');
      const id = `cs_test_${randomBytes(16).toString('hex')}`;
      const session: FakeCheckoutSession = {
        id,
        object: 'checkout.session',
        mode: 'payment',
        status: 'open',
        payment_status: 'unpaid',
        url: `${baseUrl}/c/pay/${id}`,
        amount_total: Number(unit),
        currency,
        customer: form.customer ?? null,
        client_reference_id: form.client_reference_id ?? null,
        metadata,
        payment_intent: null,
        success_url: form.success_url,
        cancel_url: form.cancel_url ?? null,
        expires_at: expiresAt,
        created,
        livemode: false,
        _payment_intent_data: { metadata: piMetadata, description: form['payment_intent_data[description]'] ?? null },
        _line_name: line['price_data][product_data][name'] ?? null,
      };
      sessions.set(id, session);
      if (key) sessionByKey.set(key, { params, sessionId: id });
      return answer(200, publicSession(session));
    }
    const getSession = /^\/v1\/checkout\/sessions\/([^/]+)$/.exec(url.pathname);
    if (req.method === 'GET' && getSession) {
      const session = sessions.get(decodeURIComponent(getSession[1]!));
      if (!session) return fail(404, { type: 'invalid_request_error', message: `No such checkout.session: '${getSession[1]!.slice(0, 80)}'`, param: 'session', code: 'resource_missing' });
      return answer(200, publicSession(session));
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
  baseUrl = `http://127.0.0.1:${port}`;

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
    sessions,
    paySession(sessionId) {
      const session = sessions.get(sessionId);
      if (!session) throw new Error(`no session ${sessionId}`);
      if (session.status !== 'open') throw new Error(`session ${sessionId} is ${session.status}`);
      const id = `pi_${randomBytes(12).toString('hex')}`;
      const intent: FakeIntent = {
        id,
        object: 'payment_intent',
        amount: session.amount_total,
        amount_received: session.amount_total,
        currency: session.currency,
        status: 'succeeded',
        customer: session.customer,
        description: session._payment_intent_data.description,
        metadata: { ...session._payment_intent_data.metadata },
        client_secret: `${id}_secret_${randomBytes(8).toString('hex')}`,
        created: Math.floor(Date.now() / 1000),
        livemode: false,
      };
      intents.set(id, intent);
      Object.assign(session, { status: 'complete', payment_status: 'paid', payment_intent: id, url: null });
      return {
        paymentIntentId: id,
        paymentSucceeded: event('payment_intent.succeeded', { ...intent, client_secret: undefined }),
        sessionCompleted: event('checkout.session.completed', publicSession(session)),
      };
    },
    expireSession(sessionId) {
      const session = sessions.get(sessionId);
      if (!session) throw new Error(`no session ${sessionId}`);
      Object.assign(session, { status: 'expired', url: null });
      return event('checkout.session.expired', publicSession(session));
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
