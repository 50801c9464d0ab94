import type { Request } from 'express';
import { csrfField, html, table } from '../../console/html';
import { ValidationError } from '../../errors';
import type { ConsoleKeysService } from '../keys.service';
import { back, body, type CustomerPageKit } from './kit';

/** A form field as the key service's input: a bounded, trimmed string, or undefined when absent. */
const field = (b: Record<string, unknown>, name: string): string | undefined => {
  const v = b[name];
  if (typeof v !== 'string') return undefined;
  if (v.length > 256) throw new ValidationError(`invalid input: ${name}: too long`, [{ field: name, message: 'too long' }]);
  return v.trim();
};
/** Requests per minute from a form: a number for the service to check (whole, 1-1000000), null when empty. */
const rpm = (v: string | undefined) => (v === undefined ? undefined : v === '' ? null : Number(v));
const orNull = (v: string | undefined) => (v === undefined ? undefined : v === '' ? null : v);

/** The settings fields of the create and change forms, in the key service's (/v1/keys) names. */
function settingsOf(b: Record<string, unknown>) {
  const out: Record<string, unknown> = {};
  const r = rpm(field(b, 'rate_limit_rpm'));
  if (r !== undefined) out.rate_limit_rpm = r;
  const limit = orNull(field(b, 'limit'));
  if (limit !== undefined) out.limit = limit;
  const reset = orNull(field(b, 'limit_reset'));
  if (reset !== undefined) out.limit_reset = reset;
  const expires = orNull(field(b, 'expires_at'));
  if (expires !== undefined) out.expires_at = expires;
  return out;
}

const param = (req: Request) => String(req.params.id ?? '').slice(0, 64);

const windowSelect = (current: string | null) =>
  html`<select id="limit_reset" name="limit_reset">${[
    ['', 'whole life of the key'],
    ['daily', 'daily (UTC day)'],
    ['weekly', 'weekly (UTC, from Monday)'],
    ['monthly', 'monthly (UTC calendar month)'],
  ].map(([v, l]) => html`<option value="${v}"${v === (current ?? '') ? html` selected` : ''}>${l}</option>`)}</select>`;

/**
 * API keys (area 'keys': owners, admins, developers): the account's keys with
 * their limits and spend, creating an inference key (its secret shown once, in
 * the answer to the POST), renaming, changing limits and revoking. The rules
 * are the key service's (src/accounts/keys.service.ts), as for /v1/keys.
 */
export function keysPages({ get, post, send }: CustomerPageKit, keys: ConsoleKeysService): void {
  get(
    '/app/keys',
    async (req, res, s) => {
      const after = typeof req.query.after === 'string' ? req.query.after.slice(0, 64) : undefined;
      const list = await keys.list(s, after);
      send(
        res,
        s,
        req,
        'API keys',
        html`${table(
          ['Name', 'Prefix', 'Kind', 'Created', 'Expires', 'Revoked', 'Rate limit (rpm)', 'Spend limit (USD)', 'Limit window', 'Spent in window (USD)', ''],
          list.data.map((k) => [
            html`${k.name ?? ''}`,
            html`<code>${k.prefix}</code>`,
            html`${k.kind}`,
            html`${k.created_at ?? ''}`,
            html`${k.expires_at ?? 'never'}`,
            html`${k.revoked_at ?? ''}`,
            html`${k.rate_limit_rpm ?? 'default'}`,
            html`${k.limit ?? 'none'}`,
            html`${k.limit === null ? '' : (k.limit_reset ?? 'whole life')}`,
            html`${k.spent}`,
            k.kind === 'inference' && !k.revoked_at ? html`<a href="/app/keys/${k.id}">Change or revoke</a>` : html``,
          ]),
          'Keys of this account (revoked ones too)',
        )}
${list.hasMore && list.lastId ? html`<p><a href="/app/keys?after=${list.lastId}">More keys</a></p>` : ''}
<section aria-labelledby="new-key-h"><h2 id="new-key-h">Create an inference key</h2>
<p>The key is shown once, on the page that follows; only its hash is stored. Management keys are created by MixRoute staff (ask support).</p>
<form method="post" action="/app/keys">${csrfField(s.csrf)}
<label for="name">Name</label><input id="name" name="name" required maxlength="200">
<label for="rate_limit_rpm">Rate limit, requests per minute (optional)</label><input id="rate_limit_rpm" name="rate_limit_rpm" inputmode="numeric">
<label for="limit">Spend limit in USD (optional, e.g. 25.00)</label><input id="limit" name="limit" inputmode="decimal">
<label for="limit_reset">Spend limit window</label>${windowSelect(null)}
<label for="expires_at">Expires at (optional, ISO 8601 such as 2027-12-31T23:59:59Z)</label><input id="expires_at" name="expires_at">
<div><button type="submit">Create key</button></div></form></section>`,
        '/app/keys',
      );
    },
    'keys',
  );

  // Answers with a page, not a redirect: the secret is in this response only, never in a URL or a later page.
  post(
    '/app/keys',
    async (req, res, s) => {
      const b = body(req);
      const created = await keys.create(s, { name: field(b, 'name') ?? '', ...settingsOf(b) });
      send(
        res,
        s,
        req,
        'API key created',
        html`<p role="status">Copy this key now: it is shown this once, and only its hash is stored.</p>
<p><code id="new-key">${created.key}</code></p>
<p class="muted">${created.data.name ?? ''} · ${created.data.prefix} · expires ${created.data.expires_at ?? 'never'}</p>
<p><a href="/app/keys">Back to API keys</a></p>`,
        '/app/keys',
      );
    },
    'keys',
  );

  get(
    '/app/keys/:id',
    async (req, res, s) => {
      const { data: k } = await keys.get(s, param(req));
      send(
        res,
        s,
        req,
        `API key ${k.prefix}`,
        html`<p>${k.name ?? ''} · <code>${k.prefix}</code> · ${k.kind} · created ${k.created_at ?? ''}${k.revoked_at ? html` · revoked ${k.revoked_at}` : ''}</p>
<section aria-labelledby="change-h"><h2 id="change-h">Change</h2>
<form method="post" action="/app/keys/${k.id}">${csrfField(s.csrf)}
<label for="name">Name</label><input id="name" name="name" required maxlength="200" value="${k.name ?? ''}">
<label for="rate_limit_rpm">Rate limit, requests per minute (empty: the default)</label><input id="rate_limit_rpm" name="rate_limit_rpm" inputmode="numeric" value="${k.rate_limit_rpm ?? ''}">
<label for="limit">Spend limit in USD (empty: none)</label><input id="limit" name="limit" inputmode="decimal" value="${k.limit ?? ''}">
<label for="limit_reset">Spend limit window</label>${windowSelect(k.limit_reset)}
<label for="expires_at">Expires at (empty: never; ISO 8601 such as 2027-12-31T23:59:59Z)</label><input id="expires_at" name="expires_at" value="${k.expires_at ?? ''}">
<div><button type="submit">Save changes</button></div></form></section>
<section aria-labelledby="revoke-h"><h2 id="revoke-h">Revoke</h2>
<p>Revoking is permanent: the gateway refuses this key within seconds, and a revoked key is never enabled again.</p>
<form method="post" action="/app/keys/${k.id}/revoke">${csrfField(s.csrf)}
<div><button type="submit">Revoke this key</button></div></form></section>
<p><a href="/app/keys">Back to API keys</a></p>`,
        '/app/keys',
      );
    },
    'keys',
  );

  post(
    '/app/keys/:id',
    async (req, res, s) => {
      const b = body(req);
      const id = param(req);
      const { data: before } = await keys.get(s, id);
      const changes = settingsOf(b);
      // An unchanged expiry is not sent again (a new one must lie ahead; the old one may have passed).
      if (changes.expires_at === before.expires_at) delete changes.expires_at;
      const name = field(b, 'name');
      await keys.update(s, id, { ...(name ? { name } : {}), ...changes });
      back(res, '/app/keys', 'keys_updated');
    },
    'keys',
  );

  post(
    '/app/keys/:id/revoke',
    async (req, res, s) => {
      await keys.revoke(s, param(req));
      back(res, '/app/keys', 'keys_revoked');
    },
    'keys',
  );
}
