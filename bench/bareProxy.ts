/**
 * The floor for any Node proxy: a node:http server that forwards every request
 * to UPSTREAM_URL (the mock's origin, e.g. http://127.0.0.1:PORT) over a
 * keep-alive http.Agent and pipes the response back. No parsing, no auth, no
 * metering. Run as its own child process by bench/gateway.bench.ts.
 *
 * Listens on PROXY_PORT (default 0 = any free port) and reports
 * `{ ready: true, port }` over the IPC channel when there is one (else prints it).
 * Exits when the parent goes away.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';

/** Hop-by-hop headers (RFC 9110 7.6.1): they describe one connection, not the message. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-authorization', 'proxy-authenticate']);

function endToEnd(headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
  return out;
}

export function createBareProxy(upstream: URL): http.Server {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256, keepAliveMsecs: 30_000 });
  const server = http.createServer((req, res) => {
    const headers = endToEnd(req.headers);
    headers.host = upstream.host;
    const up = http.request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers, agent },
      (ur) => {
        res.writeHead(ur.statusCode ?? 502, endToEnd(ur.headers));
        ur.pipe(res);
      },
    );
    up.on('error', () => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'application/json' });
      res.end();
    });
    res.on('close', () => {
      if (!res.writableFinished) up.destroy();
    });
    req.pipe(up);
  });
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  return server;
}

const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (isMain) {
  const target = process.env.UPSTREAM_URL;
  if (!target) {
    console.error('bareProxy: UPSTREAM_URL is required');
    process.exit(2);
  }
  const server = createBareProxy(new URL(target));
  server.listen(Number(process.env.PROXY_PORT ?? 0), '127.0.0.1', () => {
    const { port } = server.address() as AddressInfo;
    if (process.send) process.send({ ready: true, port });
    else console.log(JSON.stringify({ ready: true, port }));
  });
  const exit = () => process.exit(0);
  process.once('SIGTERM', exit);
  process.once('SIGINT', exit);
  process.once('disconnect', exit);
}
