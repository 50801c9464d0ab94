import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Listens with a request handler: an Express app or a plain node:http listener. */
export async function listen(app: RequestListener, port: number, host: string): Promise<{ server: Server; url: string }> {
  return new Promise((resolve, reject) => {
    const server = createServer(app);
    server.listen(port, host);
    server.once('error', reject);
    server.once('listening', () => {
      const addr = server.address() as AddressInfo;
      resolve({ server, url: `http://${host}:${addr.port}` });
    });
  });
}

/**
 * Stops accepting and resolves once every connection is gone. Connections that
 * finish their request while we wait become idle keep-alive connections; they
 * are closed as they appear, so a stop waits for in-flight work only.
 */
export async function closeServer(server: Server): Promise<void> {
  await new Promise<void>((resolve) => {
    const sweep = setInterval(() => server.closeIdleConnections(), 100);
    server.close(() => {
      clearInterval(sweep);
      resolve();
    });
    server.closeIdleConnections();
  });
}
