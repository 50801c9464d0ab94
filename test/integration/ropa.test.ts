import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accountsService } from '../../src/accounts/accounts.service';
import { createAdminApp } from '../../src/admin/app';
import { systemClock } from '../../src/clock';
import { staffService } from '../../src/staff/staff.service';
import { runCliJson } from '../helpers/cli';
import { silentLogger, testConfig, testDb, testEnv } from '../helpers/env';
import { serve } from '../helpers/servers';

/**
 * The record of processing activities (article 30) through the admin API and
 * the CLI, on the real database: two activities and three recipients (one
 * model provider under standard contractual clauses) are entered through the
 * API, then the CSV holds a row per activity with the controller, the legal
 * basis, the categories, the recipients, the transfer with its clauses' date
 * and the retention period; the PDF is a PDF; a billing token is refused.
 * The database is shared with other tests, so rows are picked by this run's tag.
 */
const config = testConfig();
const env = testEnv(config);
const db = testDb(config);
const tag = randomUUID().slice(0, 8);
let admin: string;
let close: () => Promise<void>;
let compliance: string;
let billing: string;
const keys = { gw: `ropa_gw_${tag}`, bill: `ropa_bill_${tag}` };
const names = { provider: `ropa-llm-${tag}`, mailer: `Ropa Mailer ${tag}`, host: `Ropa Hosting ${tag}` };
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ropa-'));

async function post(p: string, body: unknown) {
  const res = await fetch(admin + p, { method: 'POST', headers: { authorization: `Bearer ${compliance}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  expect(res.status, await res.clone().text()).toBe(201);
}
const get = (p: string, token = compliance) => fetch(admin + p, { headers: { authorization: `Bearer ${token}` } });

beforeAll(async () => {
  await accountsService({ db, clock: systemClock, config }).addProvider({ name: names.provider, baseUrl: 'https://api.example.com', kind: 'openai' });
  ({ url: admin, close } = await serve(createAdminApp({ db, billing: config.billing, config, clock: systemClock, logger: silentLogger, readiness: {}, readyCheckTimeoutMs: 1000 })));
  compliance = (await staffService({ db }).createStaffToken({ role: 'compliance' })).token;
  billing = (await staffService({ db }).createStaffToken({ role: 'billing' })).token;

  const reason = 'ropa test';
  await post('/privacy/register/activities', {
    key: keys.gw, purpose: 'Forwarding API requests to model providers', legalBasis: 'contract', dataSubjectCategories: ['customer users'],
    dataCategories: ['request metadata', 'prompts in transit'], systems: ['gateway'], retentionCategory: 'usage_events', reason,
  });
  await post('/privacy/register/activities', {
    key: keys.bill, purpose: '=Invoicing customers', legalBasis: 'legal_obligation', dataSubjectCategories: ['billing contacts'],
    dataCategories: ['billing contact'], systems: ['ledger', 'invoicing'], retentionCategory: 'invoices', reason,
  });
  await post('/privacy/register/recipients', {
    kind: 'model_provider', provider: names.provider, role: 'sub_processor', countries: ['US'], transferMechanism: 'standard_contractual_clauses', sccDate: '2021-06-04', agreementRef: 'DPA-7', reason,
  });
  await post('/privacy/register/recipients', { kind: 'email_service', name: names.mailer, role: 'processor', countries: ['DE'], transferMechanism: 'not_needed', agreementRef: 'AVV-1', reason });
  await post('/privacy/register/recipients', { kind: 'hosting', name: names.host, role: 'processor', countries: ['FR', 'NL'], transferMechanism: 'not_needed', agreementRef: 'H-1', reason });
});
afterAll(async () => {
  await close?.();
  await db.destroy();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('record of processing activities', () => {
  it('exports CSV: one row per activity with the article 30 facts', async () => {
    const res = await get('/privacy/register/record-of-processing?format=csv');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/csv/);
    expect(res.headers.get('content-disposition')).toMatch(/record-of-processing-\d{4}-\d{2}-\d{2}\.csv/);
    const rows = parse(await res.text(), { columns: true }) as Record<string, string>[];
    const mine = rows.filter((r) => r.activity === keys.gw || r.activity === keys.bill);
    expect(mine.map((r) => r.activity).sort()).toEqual([keys.bill, keys.gw]);
    const gw = mine.find((r) => r.activity === keys.gw)!;
    const bill = mine.find((r) => r.activity === keys.bill)!;

    expect(gw).toMatchObject({
      controller: config.invoicing.issuer.name,
      purpose: 'Forwarding API requests to model providers',
      legal_basis: 'performance of a contract (art. 6(1)(b))',
      data_subject_categories: 'customer users',
      personal_data_categories: 'request metadata; prompts in transit',
      systems: 'gateway',
    });
    expect(gw.controller_contact).toContain(config.invoicing.issuer.email);
    const policy = await db('retention_policies').where({ category: 'usage_events' }).first();
    expect(gw.erasure_time_limit).toBe(`${policy.period} days, then deleted (retention category usage_events)`);
    expect(bill.erasure_time_limit).toMatch(/^\d+ years after the end of the calendar year, then deleted \(retention category invoices\)$/);
    // A value that starts like a formula is inert in a spreadsheet.
    expect(bill.purpose).toBe("'=Invoicing customers");

    expect(gw.recipients).toContain(`${names.provider} (model provider, sub-processor; US)`);
    expect(gw.recipients).toContain(`${names.mailer} (email service, processor; DE)`);
    expect(gw.recipients).toContain(`${names.host} (hosting, processor; FR, NL)`);
    expect(gw.recipient_categories).toMatch(/model provider \(sub-processor\): [A-Z, ]*US/);
    expect(gw.third_country_transfers).toContain(`${names.provider} (US): standard contractual clauses of 2021-06-04`);
    expect(gw.third_country_transfers).not.toContain(names.mailer);
    expect(gw.third_country_transfers).not.toContain(names.host);
    expect(gw.security_measures).toContain('docs/security.md');
  });

  it('exports PDF', async () => {
    const res = await get('/privacy/register/record-of-processing?format=pdf');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/pdf');
    const pdf = Buffer.from(await res.arrayBuffer());
    expect(pdf.subarray(0, 5).toString('latin1')).toBe('%PDF-');
    expect(pdf.length).toBeGreaterThan(3000);
  });

  it('refuses an unknown or missing format (400) and a billing token (403)', async () => {
    expect((await get('/privacy/register/record-of-processing?format=xlsx')).status).toBe(400);
    expect((await get('/privacy/register/record-of-processing')).status).toBe(400);
    expect((await get('/privacy/register/record-of-processing?format=csv', billing)).status).toBe(403);
  });

  it('writes the record from the CLI', async () => {
    const csvFile = path.join(tmp, 'ropa.csv');
    const pdfFile = path.join(tmp, 'ropa.pdf');
    expect(await runCliJson(['register', 'record', '--csv', '--output', csvFile], env)).toMatchObject({ format: 'csv', file: csvFile });
    expect(fs.readFileSync(csvFile, 'utf8')).toContain(keys.gw);
    expect(await runCliJson(['register', 'record', '--pdf', '--output', pdfFile], env)).toMatchObject({ format: 'pdf', file: pdfFile });
    expect(fs.readFileSync(pdfFile).subarray(0, 5).toString('latin1')).toBe('%PDF-');
  });
});
