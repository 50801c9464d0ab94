import { randomUUID } from 'node:crypto';
import { accountsService } from '../../src/accounts/accounts.service';
import { systemClock } from '../../src/clock';
import type { Config } from '../../src/config';
import { customerConsoleService } from '../../src/customerConsole/customerConsole.service';
import type { Db } from '../../src/db/knex';

/** A browser's cookie jar over fetch against `base`, redirects not followed (as in test/security/console-session.test.ts). */
export function browser(base: string, headers: Record<string, string> = {}) {
  const jar = new Map<string, string>();
  const request = async (method: 'GET' | 'POST', path: string, form?: Record<string, string>, extra: Record<string, string> = {}) => {
    const res = await fetch(base + path, {
      method,
      redirect: 'manual',
      headers: {
        ...headers,
        ...extra,
        ...(jar.size ? { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') } : {}),
        ...(form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
      },
      body: form ? new URLSearchParams(form).toString() : undefined,
    });
    for (const c of res.headers.getSetCookie()) {
      const [pair, ...attrs] = c.split(';');
      const [name, ...value] = pair!.split('=');
      if (attrs.some((a) => a.trim().toLowerCase() === 'max-age=0')) jar.delete(name!.trim());
      else jar.set(name!.trim(), value.join('='));
    }
    return { status: res.status, location: res.headers.get('location') ?? '', body: await res.text(), setCookie: res.headers.getSetCookie(), headers: res.headers };
  };
  return {
    jar,
    get: (path: string, extra?: Record<string, string>) => request('GET', path, undefined, extra),
    post: (path: string, form: Record<string, string>, extra?: Record<string, string>) => request('POST', path, form, extra),
  };
}
export type Browser = ReturnType<typeof browser>;

export const SESSION_COOKIE = '__Host-mr_app';

export const hidden = (html: string, name: string) => new RegExp(`name="${name}" value="([^"]*)"`).exec(html)?.[1] ?? '';

/** Opens the sign-in page and posts it, as a person at that browser does. */
export async function signIn(b: Browser, email: string, password: string, extra: Record<string, string> = {}) {
  const form = await b.get('/app/login');
  return b.post('/app/login', { _csrf: hidden(form.body, '_csrf'), email, password, ...extra });
}

export const signedIn = (r: { status: number; location: string }) => r.status === 303 && r.location === '/app';

/** The session's CSRF token, read from a page as the browser would. */
export async function csrfOf(b: Browser): Promise<string> {
  return hidden((await b.get('/app/security')).body, '_csrf');
}

/** A new account with one user who has a console password, and `balance` credited as a grant. */
export async function customerWithPassword(db: Db, config: Config, password: string, opts: { balance?: string; name?: string } = {}) {
  const tag = randomUUID().slice(0, 8);
  const ops = accountsService({ db, clock: systemClock, config });
  const account = await ops.createAccount({ name: opts.name ?? `Customer ${tag} GmbH`, plan: 'prepaid', country: 'DE', billingEmail: `billing-${tag}@example.com` });
  const email = `user-${tag}@example.com`;
  const user = await ops.createUser({ accountId: account.id, name: `User ${tag}`, email });
  await customerConsoleService({ db }).setPassword(user.id, password);
  if (opts.balance) {
    await db('ledger_entries').insert({ account_id: account.id, kind: 'grant', contra: 'promotions', amount: opts.balance, idempotency_key: `cc-grant-${tag}`, reference_type: 'test', reference_id: tag, actor: 'test', balance_after: opts.balance });
    await db('account_balances').insert({ account_id: account.id, balance: opts.balance }).onConflict('account_id').merge(['balance']);
  }
  return { accountId: account.id as string, accountName: account.name as string, userId: user.id as string, email, tag };
}
