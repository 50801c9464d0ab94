import { parse } from 'csv-parse/sync';
import { isDecimalString, Money, toAmountString } from '../shared/money.rules';

/**
 * An upstream provider's usage statement: what the provider says we used, per
 * UTC day and (their) model. The CSV we import:
 *
 *   day,model,input_tokens,cached_tokens,output_tokens,cost[,currency]
 *   2026-11-25,gpt-4o-mini-2024-07-18,1200345,20000,530211,0.98
 *
 * `input_tokens` counts every input token, cached ones included (as the
 * providers' exports and `usage.prompt_tokens` do); `cached_tokens` is the part
 * of them served from the cache. `currency` defaults to USD. A file must not
 * name the same day and model twice.
 */
export interface StatementRow {
  day: string;
  model: string;
  inputTokens: number;
  cachedTokens: number;
  outputTokens: number;
  cost: string;
  currency: string;
}

export class StatementError extends Error {
  constructor(readonly problems: string[]) {
    super(`the statement cannot be imported: ${problems.slice(0, 10).join('; ')}${problems.length > 10 ? `; and ${problems.length - 10} more` : ''}`);
    this.name = 'StatementError';
  }
}

const REQUIRED = ['day', 'model', 'input_tokens', 'cached_tokens', 'output_tokens', 'cost'] as const;
const DAY = /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$/;
const MAX_ROWS = 100_000;

function isCalendarDate(day: string): boolean {
  const t = Date.parse(`${day}T00:00:00Z`);
  return Number.isFinite(t) && new Date(t).toISOString().slice(0, 10) === day;
}

function tokens(value: string, column: string, line: number, problems: string[]): number {
  const n = /^\d{1,15}$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n)) problems.push(`line ${line}: ${column} must be a whole number of tokens`);
  return n;
}

/** Parses a statement, reporting every bad line at once (up to ten in the message). */
export function parseStatement(text: string): StatementRow[] {
  let records: Record<string, string>[];
  try {
    records = parse(text, { columns: (h: string[]) => h.map((c) => c.trim().toLowerCase()), skip_empty_lines: true, trim: true, bom: true });
  } catch (err) {
    throw new StatementError([`not a CSV file: ${(err as Error).message.split('\n')[0]}`]);
  }
  if (records.length === 0) throw new StatementError(['the file has no rows (expected a header line and one row per day and model)']);
  const missing = REQUIRED.filter((c) => !(c in records[0]!));
  if (missing.length) throw new StatementError([`missing column(s): ${missing.join(', ')} (expected ${REQUIRED.join(',')}[,currency])`]);
  if (records.length > MAX_ROWS) throw new StatementError([`more than ${MAX_ROWS} rows: split the file by month`]);

  const problems: string[] = [];
  const seen = new Set<string>();
  const rows: StatementRow[] = [];
  records.forEach((r, i) => {
    const line = i + 2;
    const day = r.day ?? '';
    if (!DAY.test(day) || !isCalendarDate(day)) problems.push(`line ${line}: day must be a date YYYY-MM-DD`);
    const model = r.model ?? '';
    if (model === '' || model.length > 200) problems.push(`line ${line}: model must be 1 to 200 characters`);
    const inputTokens = tokens(r.input_tokens ?? '', 'input_tokens', line, problems);
    const cachedTokens = tokens(r.cached_tokens ?? '', 'cached_tokens', line, problems);
    const outputTokens = tokens(r.output_tokens ?? '', 'output_tokens', line, problems);
    if (cachedTokens > inputTokens) problems.push(`line ${line}: cached_tokens is part of input_tokens and cannot exceed it`);
    const costText = r.cost ?? '';
    const costOk = isDecimalString(costText) && new Money(costText).gte(0);
    if (!costOk) problems.push(`line ${line}: cost must be a non-negative decimal`);
    const currency = (r.currency || 'USD').toUpperCase();
    if (!/^[A-Z]{3}$/.test(currency)) problems.push(`line ${line}: currency must be a 3-letter code`);
    const key = `${day}|${model}`;
    if (seen.has(key)) problems.push(`line ${line}: ${day} ${model} appears twice`);
    seen.add(key);
    rows.push({ day, model, inputTokens, cachedTokens, outputTokens, cost: costOk ? toAmountString(new Money(costText)) : '0', currency });
  });
  if (problems.length) throw new StatementError(problems);
  return rows;
}
