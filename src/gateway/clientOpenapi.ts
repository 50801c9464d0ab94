import { KEY_OBJECT_FIELDS, KEY_REQUEST_FIELDS, KEYS_PAGE_MAX } from '../accounts/keys.schemas';
import {
  ACTIVITY_DEFAULT_DAYS,
  ACTIVITY_DEFAULT_LIMIT,
  ACTIVITY_FIELDS,
  ACTIVITY_MAX_DAYS,
  ACTIVITY_MAX_LIMIT,
  CREDITS_FIELDS,
  GENERATION_FIELDS,
  KEY_FIELDS,
  type FieldDoc,
} from '../accounts/clientApi.rules';
import { ALERT_FIELDS } from './keysApi';
import { WEBHOOK_DELIVERY_FIELDS, WEBHOOK_ENDPOINT_FIELDS } from './webhooksApi';
import { SUBPROCESSOR_NOTICE_FIELDS } from './subprocessorApi';

/**
 * The gateway's OpenAPI 3.1 document for the client account endpoints
 * (docs/client-api.md), built from the field lists in clientApi.rules.ts so it
 * cannot drift from the responses. Other client endpoints add an entry to
 * CLIENT_ENDPOINTS.
 */
export interface ClientEndpointDoc {
  method: 'get' | 'post' | 'patch' | 'delete';
  path: string;
  summary: string;
  parameters?: { name: string; in: 'query' | 'path'; required: boolean; description: string; schema: Record<string, unknown> }[];
  /** The response body: `{ data: <fields> }` (envelope 'data') or the fields themselves ('none'). */
  envelope: 'data' | 'none';
  fields: readonly FieldDoc[];
  /** Extra top-level properties next to the fields (for a list's paging). */
  extra?: Record<string, Record<string, unknown>>;
  list?: boolean;
  csv?: boolean;
  /** The success status when not 200 (201 for a create). */
  status?: 201;
  /** A JSON request body's fields (all optional in the schema; the summary says which are required). */
  requestFields?: readonly FieldDoc[];
  /** Error statuses besides 400, 401, 404 and 429. */
  moreErrors?: readonly ('403' | '409' | '413')[];
}

const WEBHOOK_ID = (what: string) => ({ name: 'id', in: 'path' as const, required: true, description: `The ${what}’s id.`, schema: { type: 'string' } });
const CHANGE_ID = { name: 'changeId', in: 'path' as const, required: true, description: 'The change’s id (change_id).', schema: { type: 'string', format: 'uuid' } };
const KEY_ID = { name: 'id', in: 'path' as const, required: true, description: 'The key’s id.', schema: { type: 'string' } };

export const CLIENT_ENDPOINTS: ClientEndpointDoc[] = [
  { method: 'get', path: '/v1/key', summary: 'The calling key: limits, spend in its window and in its life, next reset', envelope: 'data', fields: KEY_FIELDS },
  { method: 'get', path: '/v1/credits', summary: 'The account’s balance, held, spendable, credit limit and plan', envelope: 'data', fields: CREDITS_FIELDS },
  {
    method: 'get',
    path: '/v1/generation',
    summary: 'One request of the account (an inference key: of itself) by its x-request-id',
    parameters: [{ name: 'id', in: 'query', required: true, description: 'The x-request-id of the request.', schema: { type: 'string', maxLength: 100 } }],
    envelope: 'data',
    fields: GENERATION_FIELDS,
  },
  {
    method: 'get',
    path: '/v1/activity',
    summary: 'Settled usage and cost per UTC day, model and key (an inference key: its own rows)',
    parameters: [
      { name: 'from', in: 'query', required: false, description: `First UTC day, included (default: ${ACTIVITY_DEFAULT_DAYS - 1} days before to).`, schema: { type: 'string', format: 'date' } },
      { name: 'to', in: 'query', required: false, description: `Last UTC day, included (default: today); at most ${ACTIVITY_MAX_DAYS} days from from.`, schema: { type: 'string', format: 'date' } },
      { name: 'group_by', in: 'query', required: false, description: 'Comma-separated subset of day, model, key (default: all three).', schema: { type: 'string', default: 'day,model,key' } },
      { name: 'limit', in: 'query', required: false, description: 'Rows per page.', schema: { type: 'integer', minimum: 1, maximum: ACTIVITY_MAX_LIMIT, default: ACTIVITY_DEFAULT_LIMIT } },
      { name: 'cursor', in: 'query', required: false, description: 'next_cursor of the previous page (same grouping).', schema: { type: 'string' } },
    ],
    envelope: 'none',
    list: true,
    csv: true,
    fields: ACTIVITY_FIELDS,
    extra: {
      from: { type: 'string', format: 'date' },
      to: { type: 'string', format: 'date' },
      group_by: { type: 'array', items: { type: 'string', enum: ['day', 'model', 'key'] } },
      has_more: { type: 'boolean' },
      next_cursor: { type: ['string', 'null'] },
    },
  },
  // Key management (/v1/keys): management keys only (docs/client-api.md#managing-keys-v1keys).
  {
    method: 'post',
    path: '/v1/keys',
    summary: 'Create an inference key (management key only); `name` is required; the secret is in `key`, shown this once',
    envelope: 'data',
    fields: KEY_OBJECT_FIELDS,
    extra: { key: { type: 'string', description: 'The new key. Shown only in this response.' } },
    status: 201,
    requestFields: KEY_REQUEST_FIELDS.filter((f) => f.name !== 'disabled'),
    moreErrors: ['403', '409', '413'],
  },
  {
    method: 'get',
    path: '/v1/keys',
    summary: 'The account’s keys in creation order, revoked ones included (management key only)',
    parameters: [
      { name: 'limit', in: 'query', required: false, description: 'Keys per page.', schema: { type: 'integer', minimum: 1, maximum: KEYS_PAGE_MAX, default: KEYS_PAGE_MAX } },
      { name: 'after', in: 'query', required: false, description: '`last_id` of the previous page.', schema: { type: 'string', format: 'uuid' } },
    ],
    envelope: 'none',
    list: true,
    fields: KEY_OBJECT_FIELDS,
    extra: { object: { type: 'string', enum: ['list'] }, first_id: { type: ['string', 'null'] }, last_id: { type: ['string', 'null'] }, has_more: { type: 'boolean' } },
    moreErrors: ['403'],
  },
  { method: 'get', path: '/v1/keys/{id}', summary: 'One key of the account (management key only); another account’s key is a 404', parameters: [KEY_ID], envelope: 'data', fields: KEY_OBJECT_FIELDS, moreErrors: ['403'] },
  {
    method: 'patch',
    path: '/v1/keys/{id}',
    summary: 'Change an inference key; fields not sent stay; `disabled: true` revokes it (management key only)',
    parameters: [KEY_ID],
    envelope: 'data',
    fields: KEY_OBJECT_FIELDS,
    requestFields: KEY_REQUEST_FIELDS.filter((f) => f.name !== 'kind'),
    moreErrors: ['403', '409', '413'],
  },
  {
    method: 'delete',
    path: '/v1/keys/{id}',
    summary: 'Revoke an inference key; idempotent (management key only)',
    parameters: [KEY_ID],
    envelope: 'data',
    fields: KEY_OBJECT_FIELDS,
    extra: { deleted: { type: 'boolean', enum: [true] } },
    moreErrors: ['403'],
  },
  { method: 'get', path: '/v1/alerts', summary: 'The account’s alert settings (management key only)', envelope: 'data', fields: ALERT_FIELDS, moreErrors: ['403'] },
  {
    method: 'patch',
    path: '/v1/alerts',
    summary: 'Set the account’s low-balance thresholds and email switch (management key only); thresholds replace the list',
    envelope: 'data',
    fields: ALERT_FIELDS,
    requestFields: ALERT_FIELDS.filter((f) => f.name !== 'updated_at'),
    moreErrors: ['403', '413'],
  },
  {
    method: 'post',
    path: '/v1/webhooks',
    summary: 'Register a webhook endpoint (management key only); url and events are required; the signing secret is in this response only',
    envelope: 'data',
    fields: WEBHOOK_ENDPOINT_FIELDS,
    status: 201,
    requestFields: [
      { name: 'url', type: 'string', description: 'https URL the deliveries are POSTed to (at most 2,048 characters; private and metadata addresses refused unless allowed).' },
      { name: 'events', type: 'array', items: 'string', description: 'The event types to deliver (1 to 8, see docs/notifications.md).' },
    ],
    extra: { secret: { type: 'string', description: 'The signing secret (whsec_…), shown once.' } },
    moreErrors: ['403', '409', '413'],
  },
  {
    method: 'get',
    path: '/v1/webhooks',
    summary: 'The account’s webhook endpoints (management key only)',
    envelope: 'none',
    list: true,
    fields: WEBHOOK_ENDPOINT_FIELDS,
    extra: { object: { type: 'string', enum: ['list'] } },
    moreErrors: ['403'],
  },
  {
    method: 'get',
    path: '/v1/webhooks/deliveries',
    summary: 'The delivery log, newest first (management key only): status, attempts, response code; never a response body',
    parameters: [
      { name: 'endpoint_id', in: 'query', required: false, description: 'Only this endpoint’s deliveries.', schema: { type: 'string' } },
      { name: 'status', in: 'query', required: false, description: 'pending, succeeded or failed.', schema: { type: 'string' } },
      { name: 'limit', in: 'query', required: false, description: 'Page size.', schema: { type: 'integer' } },
      { name: 'before', in: 'query', required: false, description: 'The next_cursor of the previous page.', schema: { type: 'string' } },
    ],
    envelope: 'none',
    list: true,
    fields: WEBHOOK_DELIVERY_FIELDS,
    extra: { object: { type: 'string', enum: ['list'] }, next_cursor: { type: ['string', 'null'] }, has_more: { type: 'boolean' } },
    moreErrors: ['403'],
  },
  { method: 'get', path: '/v1/webhooks/deliveries/{id}', summary: 'One delivery of the account', parameters: [WEBHOOK_ID('delivery')], envelope: 'data', fields: WEBHOOK_DELIVERY_FIELDS, moreErrors: ['403'] },
  {
    method: 'post',
    path: '/v1/webhooks/deliveries/{id}/redeliver',
    summary: 'Send a delivery again (a new run; a delivery still pending is left as it is)',
    parameters: [WEBHOOK_ID('delivery')],
    envelope: 'data',
    fields: WEBHOOK_DELIVERY_FIELDS,
    moreErrors: ['403'],
  },
  { method: 'get', path: '/v1/webhooks/{id}', summary: 'One endpoint of the account', parameters: [WEBHOOK_ID('endpoint')], envelope: 'data', fields: WEBHOOK_ENDPOINT_FIELDS, moreErrors: ['403'] },
  { method: 'post', path: '/v1/webhooks/{id}/disable', summary: 'Stop deliveries to an endpoint', parameters: [WEBHOOK_ID('endpoint')], envelope: 'data', fields: WEBHOOK_ENDPOINT_FIELDS, moreErrors: ['403'] },
  { method: 'post', path: '/v1/webhooks/{id}/enable', summary: 'Resume deliveries to an endpoint', parameters: [WEBHOOK_ID('endpoint')], envelope: 'data', fields: WEBHOOK_ENDPOINT_FIELDS, moreErrors: ['403'] },  // Sub-processor notices (docs/client-api.md#sub-processor-notices): management keys only.
  {
    method: 'get',
    path: '/v1/subprocessor-notices',
    summary: 'The account’s notices of new sub-processors, newest first (management key only; accounts with a data-processing agreement)',
    envelope: 'none',
    list: true,
    fields: SUBPROCESSOR_NOTICE_FIELDS,
    extra: { object: { type: 'string', enum: ['list'] } },
    moreErrors: ['403'],
  },
  { method: 'get', path: '/v1/subprocessor-notices/{changeId}', summary: 'One notice of the account; another account’s is a 404', parameters: [CHANGE_ID], envelope: 'data', fields: SUBPROCESSOR_NOTICE_FIELDS, moreErrors: ['403'] },
  {
    method: 'post',
    path: '/v1/subprocessor-notices/{changeId}/accept',
    summary: 'Accept the change now: the sub-processor may receive the account’s traffic (optional body {"reason"}, 3-500 characters); `changed` is false when it was already accepted',
    parameters: [CHANGE_ID],
    envelope: 'data',
    fields: SUBPROCESSOR_NOTICE_FIELDS,
    extra: { changed: { type: 'boolean' } },
    moreErrors: ['403', '413'],
  },
  {
    method: 'post',
    path: '/v1/subprocessor-notices/{changeId}/object',
    summary: 'Object to the change: the sub-processor receives none of the account’s traffic, also after the notice period, until the account accepts (optional body {"reason"})',
    parameters: [CHANGE_ID],
    envelope: 'data',
    fields: SUBPROCESSOR_NOTICE_FIELDS,
    extra: { changed: { type: 'boolean' } },
    moreErrors: ['403', '413'],
  },
];

function fieldSchema(f: FieldDoc): Record<string, unknown> {
  const type = f.nullable ? [f.type, 'null'] : f.type;
  return {
    type,
    ...(f.items ? { items: { type: f.items } } : {}),
    ...(f.format === 'decimal' ? { pattern: '^-?\\d+(\\.\\d+)?$' } : f.format ? { format: f.format } : {}),
    ...(f.enum ? { enum: f.nullable ? [...f.enum, null] : f.enum } : {}),
    description: f.description,
  };
}

export function clientOpenApiDocument(): Record<string, unknown> {
  const error = { $ref: '#/components/responses/Error' };
  const paths: Record<string, Record<string, unknown>> = {};
  for (const e of CLIENT_ENDPOINTS) {
    const item = { type: 'object', properties: Object.fromEntries(e.fields.map((f) => [f.name, fieldSchema(f)])) };
    const body = e.list
      ? { type: 'object', properties: { data: { type: 'array', items: item }, ...(e.extra ?? {}) } }
      : e.envelope === 'data'
        ? { type: 'object', properties: { data: item, ...(e.extra ?? {}) } }
        : item;
    paths[e.path] ??= {};
    paths[e.path]![e.method] = {
      summary: e.summary,
      security: [{ apiKey: [] }],
      parameters: e.parameters ?? [],
      ...(e.requestFields
        ? {
            requestBody: {
              required: true,
              content: { 'application/json': { schema: { type: 'object', additionalProperties: false, properties: Object.fromEntries(e.requestFields.map((f) => [f.name, fieldSchema(f)])) } } },
            },
          }
        : {}),
      responses: {
        ...Object.fromEntries((e.moreErrors ?? []).map((code) => [code, error])),
        [String(e.status ?? 200)]: {
          description: 'OK',
          content: {
            'application/json': { schema: body },
            ...(e.csv ? { 'text/csv': { schema: { type: 'string', description: 'The rows as CSV (header line first); the cursor in the x-next-cursor header.' } } } : {}),
          },
        },
        '400': error,
        '401': error,
        '404': error,
        '429': error,
      },
    };
  }
  return {
    openapi: '3.1.0',
    info: { title: 'MixRoute client account API', version: '0.1.0', description: 'What an API key may read about its own account (docs/client-api.md).' },
    paths,
    components: {
      securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'A MixRoute API key' } },
      responses: {
        Error: {
          description: 'Error in OpenAI’s shape',
          content: {
            'application/json': {
              schema: {
                type: 'object',
                properties: {
                  error: {
                    type: 'object',
                    properties: { message: { type: 'string' }, type: { type: 'string' }, param: { type: ['string', 'null'] }, code: { type: ['string', 'null'] } },
                  },
                },
              },
            },
          },
        },
      },
    },
  };
}
