import { randomUUID } from 'node:crypto';
import type { RequestHandler } from 'express';

/**
 * Our own request id on every response (a client-supplied one is not trusted
 * to be unique). UUIDv4 is unique across instances without coordination.
 */
export function requestIdMiddleware(prefix: string): RequestHandler {
  return (req, res, next) => {
    const id = `${prefix}${randomUUID()}`;
    res.locals.requestId = id;
    res.setHeader('x-request-id', id);
    next();
  };
}
