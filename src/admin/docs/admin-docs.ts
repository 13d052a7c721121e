import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { DocumentBuilder, OpenAPIObject, SwaggerModule } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ADMIN_SECURITY_SCHEME } from '../admin-api.decorator';
import { AdminModule } from '../admin.module';

export const ADMIN_DOCS_PATH = '/admin/docs';
/** The OpenAPI document; also at `/admin/docs-json`, where Nest apps usually serve it. */
export const ADMIN_OPENAPI_PATHS = [`${ADMIN_DOCS_PATH}/openapi.json`, `${ADMIN_DOCS_PATH}-json`];

/** The Swagger UI files the page loads, by the name it loads them under. */
const UI_ASSETS: Record<string, string> = {
  'swagger-ui.css': 'text/css; charset=utf-8',
  'swagger-ui-bundle.js': 'application/javascript; charset=utf-8',
  'favicon-32x32.png': 'image/png',
};

const UI_PAGE = `<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Admin API</title>
  <link rel="icon" type="image/png" href="${ADMIN_DOCS_PATH}/favicon-32x32.png">
  <link rel="stylesheet" href="${ADMIN_DOCS_PATH}/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="${ADMIN_DOCS_PATH}/swagger-ui-bundle.js"></script>
  <script src="${ADMIN_DOCS_PATH}/admin-docs.js"></script>
</body>
</html>
`;

// The operator types the admin token into "Authorize"; it stays in the page, never in storage.
const UI_SCRIPT = `window.addEventListener('load', function () {
  window.ui = SwaggerUIBundle({
    url: '${ADMIN_OPENAPI_PATHS[0]}',
    dom_id: '#swagger-ui',
    deepLinking: true,
    persistAuthorization: false,
  });
});
`;

export function buildAdminOpenApiDocument(app: NestFastifyApplication): OpenAPIObject {
  const config = new DocumentBuilder()
    .setTitle('Bitrix24 app backend — admin API')
    .setDescription(
      'Operator view and levers: portals, stored events, drains, statistics. Every route needs ' +
        '`Authorization: Bearer $ADMIN_TOKEN`. Errors are `{"error":{"code","message"}}`; lists ' +
        'are `{items, nextCursor}` with keyset pagination (`?limit=&cursor=`).',
    )
    .setVersion('1')
    .addBearerAuth(
      { type: 'http', scheme: 'bearer', description: 'The ADMIN_TOKEN of this deployment' },
      ADMIN_SECURITY_SCHEME,
    )
    .build();
  return SwaggerModule.createDocument(app, config, { include: [AdminModule] });
}

/**
 * Where the Swagger UI build that @nestjs/swagger ships with lives. Nest's own UI serving needs
 * @fastify/static, whose current major does not fit this Fastify; the UI is three static files,
 * served here from memory instead.
 */
function swaggerUiDirectory(): string {
  const fromSwagger = createRequire(require.resolve('@nestjs/swagger'));
  return path.dirname(fromSwagger.resolve('swagger-ui-dist/package.json'));
}

/**
 * Serves the admin API's OpenAPI document and Swagger UI at /admin/docs — the one /admin path
 * open without the bearer token: it holds no data, and the UI sends the token the operator types.
 */
export function setupAdminDocs(app: NestFastifyApplication): void {
  const documentJson = JSON.stringify(buildAdminOpenApiDocument(app));
  const assetDirectory = swaggerUiDirectory();
  const assets = new Map<string, Promise<Buffer>>();
  const fastify = app.getHttpAdapter().getInstance();

  const sendDocument = (reply: FastifyReply): FastifyReply =>
    reply
      .header('content-type', 'application/json; charset=utf-8')
      .header('cache-control', 'no-store')
      .send(documentJson);
  const sendPage = (request: FastifyRequest, reply: FastifyReply): FastifyReply => {
    const accept = request.headers.accept ?? '';
    if (accept.includes('application/json') && !accept.includes('text/html')) {
      return sendDocument(reply);
    }
    return reply
      .header('content-type', 'text/html; charset=utf-8')
      .header('cache-control', 'no-store')
      .send(UI_PAGE);
  };

  fastify.get(ADMIN_DOCS_PATH, sendPage);
  fastify.get(`${ADMIN_DOCS_PATH}/`, sendPage);
  for (const documentPath of ADMIN_OPENAPI_PATHS) {
    fastify.get(documentPath, (_request, reply) => sendDocument(reply));
  }
  fastify.get(`${ADMIN_DOCS_PATH}/admin-docs.js`, (_request, reply) =>
    reply.header('content-type', 'application/javascript; charset=utf-8').send(UI_SCRIPT),
  );
  for (const [name, contentType] of Object.entries(UI_ASSETS)) {
    fastify.get(`${ADMIN_DOCS_PATH}/${name}`, async (_request, reply) => {
      let content = assets.get(name);
      if (!content) {
        // A failed read is not cached, so the next request tries again.
        content = readFile(path.join(assetDirectory, name)).catch((error: unknown) => {
          assets.delete(name);
          throw error;
        });
        assets.set(name, content);
      }
      return reply
        .header('content-type', contentType)
        .header('cache-control', 'public, max-age=3600')
        .send(await content);
    });
  }
}
