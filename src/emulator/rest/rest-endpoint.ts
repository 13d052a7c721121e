import type { FastifyInstance } from 'fastify';
import type { Emulator } from '../emulator';
import { mergeRequestParams, stringifyAsPhpJson } from './php-values';
import type { PortalRestApi } from './portal-rest-api';
import { normalizeMethodName } from './rest-method';

interface PortalRestRoute {
  Params: { domain: string; '*': string };
}

/**
 * Every portal's REST endpoint lives under its domain on the emulator: `client_endpoint` is
 * `${url}/<domain>/rest/`, and `…/rest//method` (client_endpoint joined with a slash) works too.
 */
export function registerPortalRestEndpoint(
  app: FastifyInstance,
  emulator: Emulator,
  api: PortalRestApi,
): void {
  app.route<PortalRestRoute>({
    method: ['GET', 'POST'],
    url: '/:domain/rest/*',
    handler: async (request, reply) => {
      const redirect = emulator.portals.redirectFor(request.params.domain, (moved) =>
        emulator.clientEndpoint(moved),
      );
      if (redirect !== undefined) {
        // A moved portal: the same path at the new address (change-domen.md), query included.
        const query = request.url.includes('?') ? request.url.slice(request.url.indexOf('?')) : '';
        redirect.portal.recordRequest({
          method: normalizeMethodName(request.params['*']),
          commands: 0,
          authConnector: '',
          receivedAt: performance.timeOrigin + performance.now(),
          outcome: 'redirect_302',
        });
        return reply
          .code(302)
          .header('location', `${redirect.to}${request.params['*'].replace(/^\/+/, '')}${query}`)
          .send();
      }
      const portal = emulator.portals.findByDomain(request.params.domain);
      if (portal === undefined) {
        return reply.code(404).send({
          error: 'PORTAL_NOT_FOUND',
          error_description: `No portal ${request.params.domain} on this emulator`,
        });
      }
      const answer = await api.answer(
        portal,
        normalizeMethodName(request.params['*']),
        mergeRequestParams(request.query, request.body),
        request.headers.authorization,
      );
      if (answer === 'withheld') {
        // The work is done but the answer is lost: the client sees a timeout.
        reply.hijack();
        return;
      }
      if ('html' in answer) {
        return reply
          .code(answer.status)
          .header('content-type', 'text/html; charset=utf-8')
          .send(answer.html);
      }
      return reply
        .code(answer.status)
        .header('content-type', 'application/json; charset=utf-8')
        .send(stringifyAsPhpJson(answer.body));
    },
  });
}
