import type { RequestHandler } from 'express';
import helmet from 'helmet';

/**
 * The security headers of both consoles (staff at /console, customers at
 * /app): scripts, styles, images, connections and form posts from this origin
 * only, never framed, no <base> or plugins. One definition, so the two
 * consoles cannot drift apart.
 */
export function consoleSecurityHeaders(): RequestHandler {
  return helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", 'data:'],
        connectSrc: ["'self'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
        baseUri: ["'none'"],
        objectSrc: ["'none'"],
      },
    },
    strictTransportSecurity: false, // set by the TLS terminator in production
  });
}
