import { randomUUID } from 'node:crypto';
import { expect } from 'vitest';
import type { Db } from '../../src/db/knex';
import type { StaffRole } from '../../src/staff/staff.rules';
import { staffService } from '../../src/staff/staff.service';

export interface ConsoleResponse {
  status: number;
  body: string;
  location: string | null;
}

/**
 * A browser on the staff console without a browser: a new staff user of
 * `role` signed in through the login form (its CSRF token and cookies kept in
 * a jar), then `request` for pages and form posts with the same cookies.
 */
export async function signedInStaff(db: Db, adminUrl: string, role: StaffRole) {
  const password = 'a long enough passphrase';
  const email = `${role}-${randomUUID().slice(0, 8)}@mixroute.example`;
  await staffService({ db }).createUser({ email, name: `Console ${role}`, role, password });
  const jar = new Map<string, string>();
  const request = async (method: 'GET' | 'POST', path: string, form?: Record<string, string>): Promise<ConsoleResponse> => {
    const res = await fetch(adminUrl + path, {
      method,
      redirect: 'manual',
      headers: { ...(jar.size ? { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') } : {}), ...(form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) },
      body: form ? new URLSearchParams(form).toString() : undefined,
    });
    for (const c of res.headers.getSetCookie()) {
      const [name, ...value] = c.split(';')[0]!.split('=');
      jar.set(name!.trim(), value.join('='));
    }
    return { status: res.status, body: await res.text(), location: res.headers.get('location') };
  };
  const login = await request('GET', '/console/login');
  const csrf = /name="_csrf" value="([^"]*)"/.exec(login.body)?.[1] ?? '';
  expect((await request('POST', '/console/login', { _csrf: csrf, next: '/console', email, password })).status).toBe(303);
  return { email, request, get: (path: string) => request('GET', path) };
}
