import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/**
 * Gateway metrics. Labels are bounded sets: the model label is a configured
 * public model name or "unknown", never what a client typed.
 */
export function gatewayMetrics(registry: Registry) {
  const buckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
  return {
    requests: new Counter({ name: 'gateway_requests_total', help: 'Requests by model, provider and status', labelNames: ['model', 'provider', 'status'], registers: [registry] }),
    duration: new Histogram({ name: 'gateway_request_duration_seconds', help: 'Total request time', labelNames: ['model', 'provider', 'status'], buckets, registers: [registry] }),
    upstream: new Histogram({ name: 'gateway_upstream_duration_seconds', help: 'Time waiting on the provider (headers and body)', labelNames: ['provider'], buckets, registers: [registry] }),
    overhead: new Histogram({
      name: 'gateway_overhead_seconds',
      help: "The gateway's own time: total minus time waiting on the provider",
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1],
      registers: [registry],
    }),
    journalBytes: new Gauge({ name: 'metering_journal_bytes', help: 'Metering records not yet in PostgreSQL, in bytes', registers: [registry] }),
    meteringLag: new Histogram({ name: 'metering_lag_seconds', help: 'Request finished -> usage event in PostgreSQL', buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300], registers: [registry] }),
    securityEvents: new Counter({ name: 'gateway_security_events_total', help: 'Failed authentications and rate-limit refusals', labelNames: ['kind'], registers: [registry] }),
  };
}

export type GatewayMetrics = ReturnType<typeof gatewayMetrics>;

/**
 * Per-request observations through label-bound children kept per label set:
 * prom-client otherwise sorts and joins the label object on every call, which
 * showed in the gateway's profile. The label sets are bounded (see above).
 */
export function requestObserver(metrics: GatewayMetrics) {
  const byOutcome = new Map<string, { requests: { inc(): void }; duration: { observe(v: number): void } }>();
  const byProvider = new Map<string, { observe(v: number): void }>();
  return (model: string, provider: string, status: number, seconds: number, upstreamSeconds: number | null, overheadSeconds: number) => {
    const key = `${model}\u0000${provider}\u0000${status}`;
    let outcome = byOutcome.get(key);
    if (!outcome) {
      const labels = [model, provider, String(status)];
      outcome = { requests: metrics.requests.labels(...labels), duration: metrics.duration.labels(...labels) };
      byOutcome.set(key, outcome);
    }
    outcome.requests.inc();
    outcome.duration.observe(seconds);
    if (upstreamSeconds !== null) {
      let upstream = byProvider.get(provider);
      if (!upstream) {
        upstream = metrics.upstream.labels(provider);
        byProvider.set(provider, upstream);
      }
      upstream.observe(upstreamSeconds);
    }
    metrics.overhead.observe(overheadSeconds);
  };
}

/**
 * Providers refusing the gateway's credential (401/403). Counted by provider
 * (a configured name) and status only: the provider's answer is never kept.
 */
export function upstreamAuthFailures(registry: Registry): (provider: string, status: number) => void {
  const counter = new Counter({
    name: 'gateway_upstream_auth_failures_total',
    help: "Provider answers refusing the gateway's credential, by provider and status",
    labelNames: ['provider', 'status'],
    registers: [registry],
  });
  return (provider, status) => counter.inc({ provider, status: String(status) });
}
