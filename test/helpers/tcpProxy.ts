import net from 'node:net';

/**
 * A TCP proxy in front of a real service (PostgreSQL, Temporal), so a test can
 * cut the service off from one client and bring it back: `cut()` stops
 * listening and destroys every connection, `restore()` listens again on the
 * same port. The service itself keeps running for everyone else.
 */
export interface TcpProxy {
  port: number;
  cut(): Promise<void>;
  restore(): Promise<void>;
  close(): Promise<void>;
}

export async function startTcpProxy(targetHost: string, targetPort: number): Promise<TcpProxy> {
  const sockets = new Set<net.Socket>();
  let server = createServer();
  let port = 0;

  function createServer(): net.Server {
    return net.createServer((client) => {
      const upstream = net.connect(targetPort, targetHost);
      for (const s of [client, upstream]) {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
        s.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream);
      upstream.pipe(client);
    });
  }

  const listen = (s: net.Server, p: number) =>
    new Promise<number>((resolve, reject) => {
      s.once('error', reject);
      s.listen(p, '127.0.0.1', () => resolve((s.address() as net.AddressInfo).port));
    });
  const stop = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      sockets.clear();
      if (!server.listening) return resolve();
      server.close(() => resolve());
    });

  port = await listen(server, 0);
  return {
    get port() {
      return port;
    },
    cut: stop,
    async restore() {
      server = createServer();
      await listen(server, port);
    },
    close: stop,
  };
}
