import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { JournalLockedError, MeteringJournal } from '../../src/metering/journal';
import { usageRecord, type UsageRecord } from '../../src/metering/record';

function record(requestId: string): UsageRecord {
  return usageRecord({
    requestId,
    occurredAt: '2026-11-26T10:00:00.000Z',
    finishedAt: '2026-11-26T10:00:01.000Z',
    accountId: 'a',
    apiKeyId: 'k',
    userId: null,
    endpoint: 'chat.completions',
    model: 'm',
    provider: 'p',
    upstreamModel: 'u',
    priceId: null,
    statusCode: 200,
    errorType: null,
    stream: false,
    inputTokens: 1,
    cacheReadTokens: 0,
    cacheWriteTokens: 0,
    outputTokens: 2,
    reasoningTokens: 0,
    usageEstimated: false,
    cost: '0.1',
    currency: 'USD',
    latencyMs: 5,
    upstreamLatencyMs: 4,
    sourceIp: '127.0.0.1',
    userAgent: 'test',
    gatewayInstance: 'g',
  });
}

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'journal-'));

/** An open journal in a new directory, and a callback factory that notes how many lines were on file when each caller heard. */
function openJournal() {
  const dir = tmp();
  const j = new MeteringJournal(dir);
  j.open();
  const active = path.join(dir, fs.readdirSync(dir).find((f) => f.startsWith('segment-'))!);
  const written: string[] = [];
  const note = (id: string) => (err: Error | null) => written.push(`${id}:${err === null ? fs.readFileSync(active, 'utf8').split('\n').length - 1 : 'failed'}`);
  return { j, active, written, note };
}

describe('metering journal', () => {
  it('hands appended records over in closed segments, oldest first, and forgets removed ones', () => {
    const j = new MeteringJournal(tmp());
    j.open();
    j.append(record('r1'));
    j.append(record('r2'));
    expect(j.closedSegments()).toEqual([]);
    j.rotate();
    j.append(record('r3'));
    j.rotate();
    const segments = j.closedSegments();
    expect(segments).toHaveLength(2);
    expect(j.readSegment(segments[0]!.path).records.map((r) => r.requestId)).toEqual(['r1', 'r2']);
    expect(j.readSegment(segments[1]!.path).records.map((r) => r.requestId)).toEqual(['r3']);
    expect(j.pendingBytes()).toBeGreaterThan(0);
    for (const s of segments) j.removeSegment(s.path);
    expect(j.closedSegments()).toEqual([]);
    expect(j.pendingBytes()).toBe(0);
    j.close();
  });

  it('writes the records of one event-loop turn together after the turn, and says so to each waiting caller', async () => {
    const { j, active, written, note } = openJournal();
    j.append(record('r1'), note('r1'));
    j.append(record('r2'), note('r2'));
    // Nothing is on file yet, and nobody has been told it is.
    expect(fs.readFileSync(active, 'utf8')).toBe('');
    expect(written).toEqual([]);
    await new Promise((r) => setImmediate(r));
    // Both lines were on file when each caller heard of it.
    expect(written).toEqual(['r1:2', 'r2:2']);
    j.close();
  });

  it('writes a record appended alone right after the current step, before the turn ends, and says so', async () => {
    const { j, written, note } = openJournal();
    j.append(record('r1'), note('r1'), true);
    // Not within the caller's own step: it still ends its response (held) after appending.
    expect(written).toEqual([]);
    await Promise.resolve();
    // Written in a microtask: no I/O callback or timer of the turn ran before it.
    expect(written).toEqual(['r1:1']);
    j.close();
  });

  it('tells the waiting callers when the write fails, and writes their records with the next write', async () => {
    const j = new MeteringJournal(tmp());
    j.open();
    const spy = vi.spyOn(fs, 'writeSync').mockImplementationOnce(() => {
      throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
    });
    const outcomes: string[] = [];
    j.append(record('r1'), (err) => outcomes.push(err ? (err as NodeJS.ErrnoException).code! : 'ok'));
    await new Promise((r) => setImmediate(r));
    expect(outcomes).toEqual(['ENOSPC']);
    expect(j.queuedRecords()).toBe(1);
    spy.mockRestore();
    j.append(record('r2'), (err) => outcomes.push(err ? 'failed' : 'ok'));
    j.rotate();
    expect(outcomes).toEqual(['ENOSPC', 'ok']);
    expect(j.readSegment(j.closedSegments()[0]!.path).records.map((r) => r.requestId)).toEqual(['r1', 'r2']);
    j.close();
  });

  it('does not rotate an empty segment', () => {
    const j = new MeteringJournal(tmp());
    j.open();
    j.rotate();
    expect(j.closedSegments()).toEqual([]);
    j.close();
  });

  it('replays what an earlier process left, including its active segment, and skips a torn last line', () => {
    const dir = tmp();
    const first = new MeteringJournal(dir);
    first.open();
    first.append(record('r1'));
    first.append(record('r2'));
    first.flush(); // what the end of the event-loop turn does
    // Simulate a crash mid-write: a torn line at the end, and no close().
    const active = fs.readdirSync(dir).find((f) => f.startsWith('segment-'))!;
    fs.appendFileSync(path.join(dir, active), '{"v":1,"requestId":"r3","occ');
    fs.writeFileSync(path.join(dir, 'LOCK'), '999999999'); // a dead pid

    const second = new MeteringJournal(dir);
    second.open();
    const segments = second.closedSegments();
    expect(segments).toHaveLength(1);
    const { records, unreadable } = second.readSegment(segments[0]!.path);
    expect(records.map((r) => r.requestId)).toEqual(['r1', 'r2']);
    expect(unreadable).toBe(0);
    second.close();
  });

  it('counts a damaged line in the middle instead of dropping it silently', () => {
    const dir = tmp();
    fs.writeFileSync(path.join(dir, 'segment-000000000001.jsonl'), `${JSON.stringify(record('a'))}\nnot json\n${JSON.stringify(record('b'))}\n`);
    const j = new MeteringJournal(dir);
    j.open();
    const { records, unreadable } = j.readSegment(j.closedSegments()[0]!.path);
    expect(records.map((r) => r.requestId)).toEqual(['a', 'b']);
    expect(unreadable).toBe(1);
    j.close();
  });

  it('refuses a directory another live process owns', () => {
    const dir = tmp();
    fs.writeFileSync(path.join(dir, 'LOCK'), String(process.ppid));
    expect(() => new MeteringJournal(dir).open()).toThrow(JournalLockedError);
  });
});

describe('metering record', () => {
  it('keeps only allowlisted fields and reduces a non-code error type', () => {
    const r = usageRecord({ ...record('x'), errorType: 'The prompt "secret stuff" is too long', ...({ prompt: 'secret' } as object) } as never);
    expect(Object.keys(r)).not.toContain('prompt');
    expect(r.errorType).toBe('upstream_error');
    expect(JSON.stringify(r)).not.toContain('secret');
  });
});
