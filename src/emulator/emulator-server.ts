import formbody from '@fastify/formbody';
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import { registerControlRoutes } from './control/control-routes';
import { ControlError } from './control/control-error';
import { EmulatorControl } from './control/emulator-control';
import type { Emulator } from './emulator';
import { OAuthServer } from './oauth/oauth-server';
import { registerTokenEndpoint } from './oauth/token-endpoint';
import { RestCallRunner } from './rest/call-runner';
import { parsePhpQuery } from './rest/php-values';
import { PortalRestApi } from './rest/portal-rest-api';
import { registerPortalRestEndpoint } from './rest/rest-endpoint';

/**
 * One Fastify app serves everything: the OAuth server, every portal's REST endpoint under its
 * domain, and the control API. Query strings and form bodies are parsed the PHP way.
 */
export async function buildEmulatorServer(emulator: Emulator): Promise<FastifyInstance> {
  const app = Fastify({
    logger: false,
    bodyLimit: 16 * 1024 * 1024,
    // Close drops the held-open connections of withheld answers and keep-alive clients.
    forceCloseConnections: true,
    routerOptions: { ignoreTrailingSlash: true, querystringParser: parsePhpQuery },
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false } },
  });
  await app.register(formbody, { parser: parsePhpQuery });
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    const text = String(body);
    if (text.trim() === '') {
      done(null, {});
      return;
    }
    try {
      done(null, JSON.parse(text) as unknown);
    } catch {
      done(Object.assign(new Error('The body is not valid JSON'), { statusCode: 400 }), undefined);
    }
  });
  app.setErrorHandler((error: FastifyError, _request, reply) => {
    if (error instanceof ControlError) return reply.code(error.httpStatus).send(error.toBody());
    const status =
      error.statusCode !== undefined && error.statusCode < 500 ? error.statusCode : 500;
    if (status === 500) console.error('Bitrix24 emulator: unexpected error', error);
    return reply.code(status).send({
      error: status === 500 ? 'INTERNAL_SERVER_ERROR' : 'INVALID_REQUEST',
      error_description: status === 500 ? 'Internal server error' : describeRefusal(error),
    });
  });
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({
      error: 'NOT_FOUND',
      error_description: `The emulator has no route ${request.method} ${request.url.split('?')[0]}`,
    }),
  );

  const runner = new RestCallRunner(emulator);
  registerTokenEndpoint(app, new OAuthServer(emulator));
  registerPortalRestEndpoint(app, emulator, new PortalRestApi(emulator, runner));
  await registerControlRoutes(app, new EmulatorControl(emulator, runner));
  return app;
}

/** Names the offending field, which ajv's own message leaves out for unknown properties. */
function describeRefusal(error: FastifyError): string {
  if (error.validation === undefined) return error.message;
  return error.validation
    .map((issue) => {
      const unknownField = issue.params.additionalProperty;
      const where = `${error.validationContext ?? 'request'}${issue.instancePath}`;
      return `${where} ${issue.message ?? 'is invalid'}${typeof unknownField === 'string' ? `: ${unknownField}` : ''}`;
    })
    .join('; ');
}
