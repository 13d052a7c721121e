import formBody from '@fastify/formbody';
import { ValidationPipe } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import qs from 'qs';
import { setupAdminConsole } from './admin/console/admin-console';
import { setupAdminDocs } from './admin/docs/admin-docs';
import { AppModule, AppModuleOptions } from './app.module';
import { ErrorResponseFilter } from './errors/error-response.filter';
import { discardUnreadBody, UnreadBodyLimits } from './http/unread-body';

/** Bracket keys nest at most this deep; Bitrix24 payloads need 3–4 levels. */
const FORM_DEPTH = 8;
const FORM_PARAMETER_LIMIT = 2000;

/** How much of a refused upload is read to its end so that its client can read the answer. */
const REFUSED_BODY: UnreadBodyLimits = { maxBytes: 64 * 1024 * 1024, maxMs: 10_000 };

/** Keys that could reach Object.prototype: refused outright rather than silently dropped. */
const PROTOTYPE_KEY = /(^|\[)(__proto__|constructor|prototype)(\]|\[|$)/;

/** Parses Bitrix24's PHP-style form bodies (`auth[member_id]=…`, percent-encoded or not). */
export function parseBitrixForm(body: string): Record<string, unknown> {
  try {
    return qs.parse(body, {
      decoder: (text, decode, charset, type) => {
        const decoded: unknown = decode(text, decode, charset);
        if (type === 'key' && typeof decoded === 'string' && PROTOTYPE_KEY.test(decoded)) {
          throw new Error(`forbidden key ${JSON.stringify(decoded.slice(0, 100))}`);
        }
        return decoded;
      },
      depth: FORM_DEPTH,
      parameterLimit: FORM_PARAMETER_LIMIT,
      throwOnLimitExceeded: true,
      arrayLimit: 100,
      strictDepth: true,
      allowPrototypes: false,
    });
  } catch (error) {
    throw Object.assign(new Error(`Malformed form body: ${(error as Error).message}`), {
      statusCode: 400,
      code: 'malformed_body',
    });
  }
}

/**
 * Builds the HTTP application (Fastify, form parsing, body limit, validation, error format).
 * Shared by main.ts and the e2e tests, so tests exercise exactly what production serves.
 */
export async function createApp(options: AppModuleOptions): Promise<NestFastifyApplication> {
  const adapter = new FastifyAdapter({
    bodyLimit: options.config.http.bodyLimitBytes,
    // Client addresses (admin rate limiting, logs) come from X-Forwarded-For only behind a proxy.
    trustProxy: options.config.http.trustProxy,
    forceCloseConnections: 'idle',
    return503OnClosing: true,
  });
  const app = await NestFactory.create<NestFastifyApplication>(
    AppModule.forRoot(options),
    adapter,
    { logger: options.logger, bodyParser: false },
  );
  const fastify = app.getHttpAdapter().getInstance();
  await fastify.register(formBody, {
    parser: parseBitrixForm,
    bodyLimit: options.config.http.bodyLimitBytes,
  });
  // A callback hook, not an async one: it runs on every response, and most need nothing from it.
  fastify.addHook('onSend', (request, reply, payload, done) => {
    if (reply.statusCode < 400) return done(null, payload);
    void discardUnreadBody(request.raw, REFUSED_BODY).then(() => done(null, payload));
  });
  // Nest routes Fastify's own errors (unparsable or oversized bodies) through this filter too.
  app.useGlobalFilters(new ErrorResponseFilter(options.logger.child('http')));
  app.useGlobalPipes(
    new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true, transform: true }),
  );

  setupAdminDocs(app);
  setupAdminConsole(app);
  return app;
}
