import type { Server } from 'node:http';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { closeServer, listen } from './listen';

/** One registry per server so two servers in one process (tests, `dev`) do not collide. */
export function createMetricsRegistry(service: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry });
  return registry;
}

/**
 * /metrics on its own listener (METRICS_HOST, by default loopback): metric
 * names and label values describe traffic and capacity, which is not for the
 * public port. Anything but GET /metrics is a 404.
 */
export async function startMetricsServer(registry: Registry, port: number, host: string): Promise<{ server: Server; url: string; close: () => Promise<void> }> {
  const { server, url } = await listen((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (req.method !== 'GET' || path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      () => res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end('metrics unavailable\n'),
    );
  }, port, host);
  return { server, url: `${url}/metrics`, close: () => closeServer(server) };
}
