import { describe, expect, it } from 'vitest';
import { isVersion, policyEmail, policyEmailKey, urlProblem, versionToAcknowledge, hasControlExceptBreaks } from '../../src/policyVersions/policyVersions.rules';

/** The pure rules of privacy policy versions (docs/customer-console.md#policy-changes). */
describe('version strings', () => {
  it('admits short names of letters, digits, dots, dashes and underscores', () => {
    for (const v of ['1', '2026-12', 'v3.1', 'a_b', 'X'.repeat(40)]) expect(isVersion(v), v).toBe(true);
  });
  it('refuses empty, long, leading punctuation, spaces, slashes, colons and non-ASCII', () => {
    for (const v of ['', 'X'.repeat(41), '-1', '.1', '_a', 'v 1', 'a/b', 'a:b', 'ä', 'v1\n', '../x']) expect(isVersion(v), JSON.stringify(v)).toBe(false);
  });
});

describe('policy links', () => {
  it('admits https addresses', () => {
    expect(urlProblem('https://mixroute.example/privacy?v=3#changes')).toBeNull();
  });
  it('refuses other schemes, credentials, spaces and long ones, each with a message', () => {
    expect(urlProblem('http://mixroute.example/privacy')).toMatch(/https/);
    expect(urlProblem('javascript:alert(1)')).toMatch(/https/);
    expect(urlProblem('HTTPS://')).toMatch(/https/);
    expect(urlProblem('https://')).toMatch(/valid|https/);
    expect(urlProblem('https://user:pw@evil.example/')).toMatch(/user name or password/);
    expect(urlProblem('https://a.example/x y')).toMatch(/spaces/);
    expect(urlProblem(`https://a.example/${'x'.repeat(500)}`)).toMatch(/at most 500/);
  });
});

describe('which version a user must acknowledge', () => {
  const v3 = { version: '3', title: 'T', summary: 'S', url: null, material: true };
  it('the latest material version until they acknowledged it', () => {
    expect(versionToAcknowledge(v3, false)).toBe(v3);
    expect(versionToAcknowledge(v3, true)).toBeNull();
  });
  it('none when no material version was ever published', () => {
    expect(versionToAcknowledge(null, false)).toBeNull();
  });
});

describe('the owner email', () => {
  it('names the version, title, summary and link; the key is one per owner and version', () => {
    const m = policyEmail({ version: '2026-12', title: 'New processors', summary: 'We added a model provider.', url: 'https://mixroute.example/privacy' });
    expect(m.subject).toContain('New processors');
    expect(m.subject).toContain('2026-12');
    expect(m.body).toContain('We added a model provider.');
    expect(m.body).toContain('https://mixroute.example/privacy');
    expect(policyEmail({ version: '1', title: 't', summary: 's', url: null }).body).not.toContain('https://');
    expect(policyEmailKey('2026-12', 'u-1')).toBe('policy:2026-12:u-1');
  });
  it('summaries may have line breaks but no other control characters', () => {
    expect(hasControlExceptBreaks('a\nb\r\n\tc')).toBe(false);
    expect(hasControlExceptBreaks('a\u001b[2Jb')).toBe(true);
    expect(hasControlExceptBreaks('a\u0085b')).toBe(true);
  });
});
