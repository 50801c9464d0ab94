import type { RequestListener, Server } from 'node:http';
import type { EventEmitter } from 'node:events';
import type { AddressInfo, Socket } from 'node:net';
import { closeServer, listen } from '../../src/http/listen';

/** Serves an app on a free loopback port for the duration of a test file. */
export async function serve(app: RequestListener): Promise<{ url: string; server: Server; close: () => Promise<void> }> {
  const { server, url } = await listen(app, 0, '127.0.0.1');
  return { server, url, close: () => closeServer(server) };
}

/** Listens on a free loopback port, keeping `sockets` the server's open connections; resolves to the port. */
export async function listenTracking(server: Server, sockets: Set<Socket>): Promise<number> {
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return (server.address() as AddressInfo).port;
}

/** waitUntil(event, done): resolves once done() holds, checked now and on each `event` from `events`. */
export const waiterOn =
  (events: EventEmitter) =>
  (event: string, done: () => boolean): Promise<void> =>
    new Promise<void>((resolve) => {
      const check = () => {
        if (!done()) return;
        events.off(event, check);
        resolve();
      };
      events.on(event, check);
      check();
    });
