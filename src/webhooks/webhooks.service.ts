import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { Clock } from '../clock';
import type { Config } from '../config';
import type { Db } from '../db/knex';
import { NotFoundError, ValidationError } from '../errors';
import { createMailer } from '../notify/mailer';
import { open, seal } from '../privacy/packages';
import { enqueueNotification, markNotificationSent, pendingNotifications } from '../privacy/privacy.data';
import { canonicalAddress, upstreamAddressPolicy } from '../shared/upstreamAddressPolicy';
import { validate } from '../shared/validate';
import { webhookSecretKey } from './secretKey';
import type { WebhookSender } from './sender';
import { newEndpointSecret, secretPrefix, signedHeaders } from './signing';
import * as data from './webhooks.data';
import {
  endpointUrlProblem,
  isSuccessStatus,
  MAX_ENDPOINTS_PER_ACCOUNT,
  MAX_URL_LENGTH,
  nextAttemptAtMs,
  shouldDisable,
  WEBHOOK_EVENT_TYPES,
  webhookPayload,
} from './webhooks.rules';

/**
 * Webhook endpoints and signed delivery (docs/webhooks.md). The management
 * half (register, list, enable/disable, delete, the delivery log,
 * redelivery) serves the admin API, the CLI, the console and the account's
 * own /v1/webhooks; each takes an optional `accountId` scope, and a row of
 * another account is "not found". The delivery half runs in activities: one
 * attempt at a time, recorded, with the retry and disable decisions of
 * webhooks.rules.ts.
 */

const uuid = (what: string) => z.uuid({ error: `${what} must be an id (UUID)` });
const eventType = z.enum(WEBHOOK_EVENT_TYPES, { error: `each event must be one of ${WEBHOOK_EVENT_TYPES.join(', ')}` });

export const registerEndpointInput = z.strictObject({
  accountId: uuid('accountId'),
  url: z
    .string({ error: 'url must be a string' })
    .trim()
    .max(MAX_URL_LENGTH, `url must be at most ${MAX_URL_LENGTH} characters`)
    .superRefine((v, ctx) => {
      const problem = endpointUrlProblem(v);
      if (problem) ctx.addIssue({ code: 'custom', message: `url ${problem}` });
    }),
  events: z
    .array(eventType, { error: 'events must be a list of event types' })
    .min(1, 'events must name at least one event type')
    .max(WEBHOOK_EVENT_TYPES.length, `events may name at most ${WEBHOOK_EVENT_TYPES.length} event types`)
    .refine((list) => new Set(list).size === list.length, 'events must not repeat an event type'),
});

/** The same, for routes that take the account from the path. */
export const registerEndpointBody = registerEndpointInput.omit({ accountId: true });

export const endpointIdInput = z.strictObject({ id: uuid('id'), accountId: uuid('accountId').optional() });
export const listEndpointsInput = z.strictObject({ accountId: uuid('accountId') });

export const DELIVERY_PAGE_MAX = 200;
export const listDeliveriesInput = z
  .strictObject({
    accountId: uuid('accountId').optional(),
    endpointId: uuid('endpointId').optional(),
    status: z.enum(['pending', 'succeeded', 'failed'], { error: 'status must be pending, succeeded or failed' }).optional(),
    limit: z.coerce
      .number({ error: 'limit must be a whole number' })
      .int('limit must be a whole number')
      .min(1, 'limit must be at least 1')
      .max(DELIVERY_PAGE_MAX, `limit must be at most ${DELIVERY_PAGE_MAX}`)
      .default(50),
    before: z.string().trim().max(200, 'before must be the cursor of a previous page').optional(),
  })
  .refine((v) => v.accountId || v.endpointId, { message: 'name an accountId or an endpointId', path: ['accountId'] });

export const deliveryIdInput = z.strictObject({ id: uuid('id'), accountId: uuid('accountId').optional() });

export interface EndpointView {
  id: string;
  accountId: string;
  url: string;
  events: string[];
  status: 'active' | 'disabled';
  /** The secret's first characters, to tell secrets apart; the secret itself is shown once. */
  secretPrefix: string;
  consecutiveFailures: number;
  disabledReason: string | null;
  createdAt: string;
  disabledAt: string | null;
}

export interface DeliveryView {
  id: string;
  endpointId: string;
  eventId: string;
  eventType: string;
  status: 'pending' | 'succeeded' | 'failed';
  attempts: number;
  lastResponseCode: number | null;
  /** Why the last attempt failed without a response code: timeout, connection_failed, address_not_allowed, endpoint_disabled. */
  lastError: string | null;
  lastAttemptAt: string | null;
  nextAttemptAt: string | null;
  /** How many times it was redelivered by hand. */
  redeliveries: number;
  createdAt: string;
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);

export function endpointView(r: data.EndpointRow): EndpointView {
  return {
    id: r.id,
    accountId: r.account_id,
    url: r.url,
    events: r.event_types,
    status: r.status,
    secretPrefix: r.secret_prefix,
    consecutiveFailures: r.consecutive_failures,
    disabledReason: r.disabled_reason,
    createdAt: r.created_at.toISOString(),
    disabledAt: iso(r.disabled_at),
  };
}

export function deliveryView(r: data.DeliveryRow): DeliveryView {
  return {
    id: r.id,
    endpointId: r.endpoint_id,
    eventId: r.event_id,
    eventType: r.event_type,
    status: r.status,
    attempts: r.attempts,
    lastResponseCode: r.last_response_code,
    lastError: r.last_error,
    lastAttemptAt: iso(r.last_attempt_at),
    nextAttemptAt: iso(r.next_attempt_at),
    redeliveries: r.generation,
    createdAt: r.created_at.toISOString(),
  };
}

const cursorOf = (r: data.DeliveryRow) => Buffer.from(`${r.created_at.toISOString()}|${r.id}`).toString('base64url');
function parseCursor(raw: string): { createdAt: Date; id: string } {
  const [at, id] = Buffer.from(raw, 'base64url').toString('utf8').split('|');
  const createdAt = new Date(at ?? '');
  if (!id || Number.isNaN(createdAt.getTime()) || !z.uuid().safeParse(id).success) {
    throw new ValidationError('invalid input: before: must be the cursor of a previous page', [{ field: 'before', message: 'must be the cursor of a previous page' }]);
  }
  return { createdAt, id };
}

export interface WebhooksDeps {
  db: Db;
  clock: Clock;
  config: { webhooks: Config['webhooks']; dataDir: string };
}

const aad = (endpointId: string) => `webhook-endpoint:${endpointId}`;

export function webhooksService({ db, clock, config }: WebhooksDeps) {
  const policy = upstreamAddressPolicy(config.webhooks.allowedHosts);
  let key: Buffer | undefined;
  const sealingKey = () => (key ??= webhookSecretKey({ secretKey: config.webhooks.secretKey, dataDir: config.dataDir }));

  /**
   * The host part of the rules that hold where a delivery connects: a literal
   * address (or `localhost`) that WEBHOOK_ALLOWED_HOSTS does not name is refused
   * now, with a clear error; a name is checked again at every connection.
   */
  function checkHost(url: string): void {
    const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
    const lower = host.toLowerCase().replace(/\.$/, '');
    const refused = canonicalAddress(host)
      ? !policy.allows(host, host)
      : (lower === 'localhost' || lower.endsWith('.localhost')) && !policy.allows(lower, '127.0.0.1');
    if (refused) {
      const message = 'url is a loopback, private, link-local or otherwise non-public address that WEBHOOK_ALLOWED_HOSTS does not name';
      throw new ValidationError(`invalid input: url: ${message}`, [{ field: 'url', message }]);
    }
  }

  async function endpointIn(id: string, accountId: string | undefined): Promise<data.EndpointRow> {
    const row = await data.findEndpoint(db, id);
    if (!row || (accountId && row.account_id !== accountId)) throw new NotFoundError(`webhook endpoint ${id} does not exist`);
    return row;
  }

  return {
    /** Registers an endpoint; the answer holds its signing secret, which is never shown again. */
    async registerEndpoint(raw: unknown): Promise<EndpointView & { secret: string }> {
      const input = validate(registerEndpointInput, raw);
      checkHost(input.url);
      if (!(await data.accountExists(db, input.accountId))) throw new NotFoundError(`account ${input.accountId} does not exist`);
      const id = randomUUID();
      const secret = newEndpointSecret();
      const sealed = seal(sealingKey(), Buffer.from(secret), aad(id));
      const row = await db.transaction(async (trx) => {
        await data.lockAccountEndpoints(trx, input.accountId);
        if ((await data.countEndpoints(trx, input.accountId)) >= MAX_ENDPOINTS_PER_ACCOUNT) {
          const message = `an account may have at most ${MAX_ENDPOINTS_PER_ACCOUNT} webhook endpoints`;
          throw new ValidationError(`invalid input: ${message}`, [{ field: 'accountId', message }]);
        }
        return data.insertEndpoint(trx, {
          id,
          account_id: input.accountId,
          url: input.url,
          event_types: input.events,
          secret_ciphertext: sealed.ciphertext,
          secret_iv: sealed.iv,
          secret_tag: sealed.authTag,
          secret_prefix: secretPrefix(secret),
        });
      });
      return { ...endpointView(row), secret };
    },

    async listEndpoints(raw: unknown): Promise<EndpointView[]> {
      const { accountId } = validate(listEndpointsInput, raw);
      return (await data.listEndpoints(db, accountId, MAX_ENDPOINTS_PER_ACCOUNT)).map(endpointView);
    },

    async getEndpoint(raw: unknown): Promise<EndpointView> {
      const { id, accountId } = validate(endpointIdInput, raw);
      return endpointView(await endpointIn(id, accountId));
    },

    /** Stops deliveries to the endpoint (pending ones end as failed at their next attempt). Idempotent. */
    async disableEndpoint(raw: unknown, by: 'staff' | 'account'): Promise<EndpointView> {
      const { id, accountId } = validate(endpointIdInput, raw);
      const row = await endpointIn(id, accountId);
      return endpointView((await data.disableEndpoint(db, id, by, clock.now())) ?? row);
    },

    /** Sends to the endpoint again, with its failure count reset. Idempotent. */
    async enableEndpoint(raw: unknown): Promise<EndpointView> {
      const { id, accountId } = validate(endpointIdInput, raw);
      await endpointIn(id, accountId);
      return endpointView((await data.enableEndpoint(db, id))!);
    },

    /** Deletes the endpoint and its delivery log. */
    async deleteEndpoint(raw: unknown): Promise<{ id: string; deleted: true }> {
      const { id, accountId } = validate(endpointIdInput, raw);
      await endpointIn(id, accountId);
      await data.deleteEndpoint(db, id);
      return { id, deleted: true };
    },

    /** The delivery log, newest first: status, attempts and the last response code, never a body. */
    async listDeliveries(raw: unknown): Promise<{ deliveries: DeliveryView[]; nextCursor: string | null }> {
      const input = validate(listDeliveriesInput, raw ?? {});
      if (input.endpointId) await endpointIn(input.endpointId, input.accountId);
      const rows = await data.listDeliveries(db, {
        accountId: input.accountId,
        endpointId: input.endpointId,
        status: input.status,
        before: input.before ? parseCursor(input.before) : undefined,
        limit: input.limit + 1,
      });
      const page = rows.slice(0, input.limit);
      return { deliveries: page.map(deliveryView), nextCursor: rows.length > input.limit ? cursorOf(page[page.length - 1]!) : null };
    },

    async getDelivery(raw: unknown): Promise<DeliveryView> {
      const { id, accountId } = validate(deliveryIdInput, raw);
      const row = await data.findDelivery(db, id);
      if (!row || (accountId && row.account_id !== accountId)) throw new NotFoundError(`webhook delivery ${id} does not exist`);
      return deliveryView(row);
    },

    /**
     * Sends a finished delivery again: a new generation, whose workflow the
     * dispatcher starts. A delivery still pending is being tried already, so
     * asking again changes nothing (a double click is one redelivery).
     */
    async redeliver(raw: unknown): Promise<DeliveryView> {
      const { id, accountId } = validate(deliveryIdInput, raw);
      const row = await data.findDelivery(db, id);
      if (!row || (accountId && row.account_id !== accountId)) throw new NotFoundError(`webhook delivery ${id} does not exist`);
      return deliveryView((await data.restartDelivery(db, id, clock.now())) ?? row);
    },
  };
}

export type WebhooksService = ReturnType<typeof webhooksService>;

/** What one attempt activity tells the delivery workflow: ids, codes and times only. */
export type AttemptOutcome =
  | { outcome: 'succeeded'; status: number }
  /** Nothing to do: the delivery or its endpoint is gone, or a redelivery superseded this run. */
  | { outcome: 'stale' }
  | { outcome: 'retry'; nextAttemptAtMs: number; status: number | null; error: string }
  /** No more attempts; `noticeKey` is set when this attempt disabled the endpoint (an email to send). */
  | { outcome: 'failed'; status: number | null; error: string; noticeKey: string | null };

export interface DeliveryWorkerDeps extends WebhooksDeps {
  sender: WebhookSender;
  mail: Config['mail'];
}

/** The activities' half: attempts, the dispatcher's work list, the disabled-endpoint email. */
export function webhookDeliveryService({ db, clock, config, sender, mail }: DeliveryWorkerDeps) {
  const { webhooks } = config;
  let key: Buffer | undefined;
  const sealingKey = () => (key ??= webhookSecretKey({ secretKey: webhooks.secretKey, dataDir: config.dataDir }));
  const mailer = createMailer(mail);

  return {
    /** One POST of the delivery's current generation, recorded; the retry and disable decisions made. */
    async attempt(input: { deliveryId: string; generation: number; attempt: number; firstAttemptMs: number }): Promise<AttemptOutcome> {
      const found = await data.findDeliveryForAttempt(db, input.deliveryId);
      if (!found) return { outcome: 'stale' };
      const { delivery, endpoint, event } = found;
      if (delivery.generation !== input.generation || delivery.status !== 'pending') return { outcome: 'stale' };
      if (endpoint.status !== 'active') {
        await data.markFailed(db, delivery.id, delivery.generation, 'endpoint_disabled');
        return { outcome: 'failed', status: null, error: 'endpoint_disabled', noticeKey: null };
      }
      const secret = open(sealingKey(), { ciphertext: endpoint.secret_ciphertext, iv: endpoint.secret_iv, authTag: endpoint.secret_tag }, aad(endpoint.id)).toString('utf8');
      const body = webhookPayload(event);
      const result = await sender.post(endpoint.url, { ...signedHeaders(secret, event.id, clock.now(), body) }, body);
      const now = clock.now();
      const status = 'status' in result ? result.status : null;

      if (status !== null && isSuccessStatus(status)) {
        await db.transaction((trx) => data.recordSuccess(trx, { id: delivery.id, generation: delivery.generation, endpointId: endpoint.id, status, now }));
        return { outcome: 'succeeded', status };
      }
      const error = 'error' in result ? result.error : `http_${status}`;
      const next = nextAttemptAtMs(input.attempt, input.firstAttemptMs, now.getTime(), webhooks.retry);
      return db.transaction(async (trx): Promise<AttemptOutcome> => {
        const run = await data.recordFailure(trx, {
          id: delivery.id,
          generation: delivery.generation,
          endpointId: endpoint.id,
          status,
          error,
          now,
          nextAttemptAt: next === null ? null : new Date(next),
        });
        if (!run) return { outcome: 'stale' };
        if (shouldDisable(run.consecutive_failures, run.failing_since, now, webhooks)) {
          const disabled = await data.disableEndpoint(trx, endpoint.id, 'failures', now);
          await data.markFailed(trx, delivery.id, delivery.generation, error);
          let noticeKey: string | null = null;
          const to = disabled ? await data.accountNoticeAddress(trx, endpoint.account_id) : null;
          if (disabled && to) {
            noticeKey = `webhook-endpoint-disabled:${endpoint.id}:${disabled.disabled_at!.toISOString()}`;
            await enqueueNotification(trx, {
              key: noticeKey,
              recipient: to,
              subject: 'MixRoute: a webhook endpoint was disabled',
              body:
                `Your webhook endpoint ${endpoint.url} (id ${endpoint.id}) failed ${run.consecutive_failures} deliveries in a row ` +
                `and has been disabled; no more events are sent to it.\n\n` +
                `When it can receive again, enable it (POST /v1/webhooks/${endpoint.id}/enable with a management key, or ask support) ` +
                `and redeliver the deliveries it missed from the delivery log.`,
            });
          }
          return { outcome: 'failed', status, error, noticeKey };
        }
        if (next === null) return { outcome: 'failed', status, error, noticeKey: null };
        return { outcome: 'retry', nextAttemptAtMs: next, status, error };
      });
    },

    /** Sends the outbox message of this key if it has not gone yet. */
    async sendNotice(noticeKey: string): Promise<number> {
      const pending = await pendingNotifications(db, [noticeKey]);
      for (const m of pending) {
        await mailer.send(m);
        await markNotificationSent(db, m.id);
      }
      return pending.length;
    },

    /**
     * Starts the workflows of deliveries that have none yet (at most `limit`),
     * then marks them started; a start that finds the workflow already there
     * counts as started, so a crash between the two only repeats a no-op.
     */
    async dispatch(start: (d: { id: string; generation: number }) => Promise<void>, limit: number): Promise<number> {
      const batch = await data.unstartedDeliveries(db, limit);
      for (const d of batch) await start(d);
      await data.markStarted(db, batch, clock.now());
      return batch.length;
    },
  };
}

export type WebhookDeliveryService = ReturnType<typeof webhookDeliveryService>;
