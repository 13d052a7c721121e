import type { FastifyInstance } from 'fastify';
import { mergeRequestParams } from '../rest/php-values';
import type { OAuthServer } from './oauth-server';

/** `GET|POST /oauth/token/`: parameters in the query or a form/JSON body, as real clients send them. */
export function registerTokenEndpoint(app: FastifyInstance, oauth: OAuthServer): void {
  app.route({
    method: ['GET', 'POST'],
    url: '/oauth/token/',
    handler: async (request, reply) => {
      const answer = oauth.exchange(mergeRequestParams(request.query, request.body));
      return reply.code(answer.status).send(answer.body);
    },
  });
}
