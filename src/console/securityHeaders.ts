import type { RequestHandler } from 'express';
import helmet from 'helmet';

/**
 * The security headers of both consoles (staff at /console, customers at
 * /app): scripts, styles, images, connections and form posts from this origin
 * only (form posts may also lead to the origins given: the customer console's
 * top-up redirects to the payment provider), never framed, no <base> or
 * plugins. One definition, so the two consoles cannot drift apart.
 */
export function consoleSecurityHeaders(opts: { formActionOrigins?: readonly string[] } = {}): RequestHandler {
  return helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", 'data:'],
        connectSrc: ["'self'"],
        // A form may also lead to the payment provider's hosted checkout: browsers apply form-action to a POST's redirect.
        formAction: ["'self'", ...(opts.formActionOrigins ?? [])],
        frameAncestors: ["'none'"],
        baseUri: ["'none'"],
        objectSrc: ["'none'"],
      },
    },
    strictTransportSecurity: false, // set by the TLS terminator in production
  });
}
