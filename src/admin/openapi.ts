import { z } from 'zod';
import { adminRoutes } from './routes';

/** The OpenAPI 3.1 document, generated from the route table so it cannot drift from the routes. */
export function openApiDocument(): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  const problem = { $ref: '#/components/responses/Problem' };
  for (const route of adminRoutes) {
    const oaPath = route.path.replace(/:(\w+)/g, '{$1}');
    const params = [...route.path.matchAll(/:(\w+)/g)].map((m) => ({
      name: m[1],
      in: 'path',
      required: true,
      schema: { type: 'string', format: 'uuid' },
    }));
    const queryParams = route.query
      ? Object.entries((z.toJSONSchema(route.query, { io: 'input' }) as { properties?: Record<string, unknown> }).properties ?? {}).map(
          ([name, schema]) => ({ name, in: 'query', required: false, schema }),
        )
      : [];
    paths[oaPath] ??= {};
    paths[oaPath][route.method] = {
      summary: route.summary,
      tags: [route.tag],
      description: `Roles: ${route.roles.join(', ')}.`,
      security: [{ staffToken: [] }],
      'x-roles': route.roles,
      parameters: [...params, ...queryParams],
      ...(route.body
        ? { requestBody: { required: true, content: { 'application/json': { schema: z.toJSONSchema(route.body, { io: 'input' }) } } } }
        : {}),
      responses: {
        [String(route.status ?? 200)]: route.responseType
          ? { description: 'OK', content: { [route.responseType]: { schema: { type: 'string' } } } }
          : { description: 'OK', content: { 'application/json': { schema: { type: 'object' } } } },
        '400': problem,
        '401': problem,
        '403': problem,
        '404': problem,
        '409': problem,
      },
    };
  }
  return {
    openapi: '3.1.0',
    info: { title: 'MixRoute admin API', version: '0.1.0', description: 'Staff API for billing and compliance staff.' },
    paths,
    components: {
      securitySchemes: { staffToken: { type: 'http', scheme: 'bearer', description: 'Staff token (mixroute staff-tokens create)' } },
      responses: {
        Problem: {
          description: 'Problem (RFC 9457)',
          content: {
            'application/problem+json': {
              schema: {
                type: 'object',
                required: ['type', 'title', 'status', 'detail'],
                properties: {
                  type: { type: 'string' },
                  title: { type: 'string' },
                  status: { type: 'integer' },
                  detail: { type: 'string' },
                  instance: { type: 'string' },
                  requestId: { type: 'string' },
                  errors: { type: 'array', items: { type: 'object', properties: { field: { type: 'string' }, message: { type: 'string' } } } },
                },
              },
            },
          },
        },
      },
    },
  };
}
