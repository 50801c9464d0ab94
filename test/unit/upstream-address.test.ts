import { describe, expect, it } from 'vitest';
import { allowedHostEntryProblem, isNonPublicAddress, upstreamAddressPolicy } from '../../src/shared/upstreamAddressPolicy';
import { loadConfig, providerCredentialEnv, providerKeyEnvName } from '../../src/config';

describe('non-public addresses', () => {
  it.each([
    '127.0.0.1', '127.9.9.9', '10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.0.1', '169.254.169.254', '100.64.0.1',
    '0.0.0.0', '224.0.0.1', '255.255.255.255', '::1', '::', 'fd00::1', 'fc00::1', 'fe80::1', '::ffff:127.0.0.1', '::ffff:7f00:1',
    '::ffff:169.254.169.254', '64:ff9b::7f00:1', 'not-an-address',
    // IPv4-compatible (::/96) and local-use NAT64 (64:ff9b:1::/48) embed an IPv4 address too.
    '::7f00:1', '[::7f00:1]', '::127.0.0.1', '::a9fe:a9fe', '64:ff9b:1::7f00:1', '64:ff9b:1:ffff::a9fe:a9fe',
  ])('%s is not public', (a) => expect(isNonPublicAddress(a)).toBe(true));

  it.each(['8.8.8.8', '1.1.1.1', '172.32.0.1', '100.128.0.1', '2606:4700:4700::1111', '::ffff:8.8.8.8'])('%s is public', (a) =>
    expect(isNonPublicAddress(a)).toBe(false),
  );
});

describe('upstreamAddressPolicy', () => {
  it('by default (*) allows public addresses only', () => {
    const p = upstreamAddressPolicy(['*']);
    expect(p.allows('api.openai.com', '104.18.6.192')).toBe(true);
    expect(p.allows('metadata.google.internal', '169.254.169.254')).toBe(false);
    expect(p.allows('localhost', '::1')).toBe(false);
  });

  it('allows named addresses, ranges and host names, and without * nothing else', () => {
    const p = upstreamAddressPolicy(['10.0.0.0/8', '127.0.0.1', 'vllm.internal', '*.models.corp', '::ffff:192.168.5.0/120']);
    expect(p.allows('10.2.3.4', '10.2.3.4')).toBe(true);
    expect(p.allows('x', '::ffff:10.2.3.4')).toBe(true);
    expect(p.allows('127.0.0.1', '127.0.0.1')).toBe(true);
    expect(p.allows('127.0.0.2', '127.0.0.2')).toBe(false);
    expect(p.allows('vllm.internal', '172.20.0.9')).toBe(true);
    expect(p.allows('VLLM.internal.', '172.20.0.9')).toBe(true);
    expect(p.allows('a.models.corp', '192.168.9.9')).toBe(true);
    expect(p.allows('models.corp.evil.example', '192.168.9.9')).toBe(false);
    expect(p.allows('x', '192.168.5.7')).toBe(true);
    expect(p.allows('api.openai.com', '104.18.6.192')).toBe(false);
  });

  it('refuses invalid entries in the setting', () => {
    expect(allowedHostEntryProblem('10.0.0.0/33')).toMatch(/range/);
    expect(allowedHostEntryProblem('http://x')).toMatch(/not a host name/);
    expect(() => loadConfig({ UPSTREAM_ALLOWED_HOSTS: '*,10.0.0.0/8,bad host' })).toThrow(/UPSTREAM_ALLOWED_HOSTS/);
    expect(loadConfig({}).upstream.allowedHosts).toEqual(['*']);
  });
});

describe('provider credential variables', () => {
  it('are only PROVIDER_*_API_KEY ones', () => {
    expect(providerCredentialEnv({ PROVIDER_OPENAI_API_KEY: 'k', DATABASE_URL: 'postgres://x', PAYMENT_WEBHOOK_SECRET: 's', PROVIDER_X: 'y' })).toEqual({
      PROVIDER_OPENAI_API_KEY: 'k',
    });
    expect(providerKeyEnvName('azure-east.v2')).toBe('PROVIDER_AZURE_EAST_V2_API_KEY');
  });
});
