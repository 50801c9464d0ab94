import type { RequestListener, Server } from 'node:http';
import { closeServer, listen } from '../../src/http/listen';

/** Serves an app on a free loopback port for the duration of a test file. */
export async function serve(app: RequestListener): Promise<{ url: string; server: Server; close: () => Promise<void> }> {
  const { server, url } = await listen(app, 0, '127.0.0.1');
  return { server, url, close: () => closeServer(server) };
}
