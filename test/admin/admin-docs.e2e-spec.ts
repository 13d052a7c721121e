import { createTestDatabase, TestDatabase } from '../support/postgres';
import { startTestApp, TestApp } from '../support/test-app';
import { ADMIN_ROUTES } from './admin-routes';

interface Operation {
  security?: Record<string, string[]>[];
  parameters?: { name: string; in: string }[];
  responses: Record<string, { content?: Record<string, { schema: unknown }> }>;
}
interface OpenApiDocument {
  openapi: string;
  info: { title: string; version: string };
  paths: Record<string, Record<string, Operation>>;
  components: {
    securitySchemes: Record<string, { type: string; scheme: string }>;
    schemas: Record<string, unknown>;
  };
}

const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'];

/** Every `$ref` anywhere in the document. */
function refsIn(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap(refsIn);
  if (value === null || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([key, item]) =>
    key === '$ref' && typeof item === 'string' ? [item] : refsIn(item),
  );
}

describe('admin API documentation', () => {
  let database: TestDatabase;
  let testApp: TestApp;
  let document: OpenApiDocument;

  beforeAll(async () => {
    database = await createTestDatabase();
    testApp = await startTestApp({ databaseUrl: database.url });
    const response = await fetch(`${testApp.url}/admin/docs/openapi.json`);
    expect(response.status).toBe(200);
    document = (await response.json()) as OpenApiDocument;
  });

  afterAll(async () => {
    await testApp?.close();
    await database?.drop();
  });

  it('serves the Swagger UI at /admin/docs without a token, with the assets it loads', async () => {
    const page = await fetch(`${testApp.url}/admin/docs`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    const html = await page.text();
    const assets = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((match) => match[1]);
    expect(assets).toEqual(
      expect.arrayContaining(['/admin/docs/swagger-ui.css', '/admin/docs/swagger-ui-bundle.js']),
    );
    for (const asset of assets) {
      const response = await fetch(`${testApp.url}${asset}`);
      expect(response.status).toBe(200);
      expect((await response.arrayBuffer()).byteLength).toBeGreaterThan(0);
    }
    const script = await (await fetch(`${testApp.url}/admin/docs/admin-docs.js`)).text();
    expect(script).toContain('/admin/docs/openapi.json');
  });

  it('serves the same document at /admin/docs-json and to JSON clients of /admin/docs', async () => {
    const conventional = await fetch(`${testApp.url}/admin/docs-json`);
    expect(await conventional.json()).toEqual(document);
    const negotiated = await fetch(`${testApp.url}/admin/docs`, {
      headers: { accept: 'application/json' },
    });
    expect(negotiated.headers.get('content-type')).toContain('application/json');
    expect(await negotiated.json()).toEqual(document);
  });

  it('is an OpenAPI 3 document with a bearer security scheme', () => {
    expect(document.openapi).toMatch(/^3\.\d+\.\d+$/);
    expect(document.info.title).toBeTruthy();
    expect(document.info.version).toBeTruthy();
    expect(document.components.securitySchemes['admin-token']).toEqual(
      expect.objectContaining({ type: 'http', scheme: 'bearer' }),
    );
  });

  it('lists every admin route, each requiring the bearer token, and nothing else', () => {
    const listed = Object.entries(document.paths).flatMap(([path, item]) =>
      Object.keys(item)
        .filter((key) => HTTP_METHODS.includes(key))
        .map((method) => `${method.toUpperCase()} ${path}`),
    );
    expect(listed.sort()).toEqual(ADMIN_ROUTES.map((r) => `${r.method} ${r.path}`).sort());
    for (const { method, path } of ADMIN_ROUTES) {
      const operation = document.paths[path][method.toLowerCase()];
      expect(operation.security).toEqual([{ 'admin-token': [] }]);
      for (const name of path.match(/\{(\w+)\}/g) ?? []) {
        expect(operation.parameters).toEqual(
          expect.arrayContaining([
            expect.objectContaining({ name: name.slice(1, -1), in: 'path' }),
          ]),
        );
      }
      const success = Object.keys(operation.responses).filter((status) => /^2/.test(status));
      expect(success).toHaveLength(1);
      expect(operation.responses[success[0]].content?.['application/json']?.schema).toBeDefined();
      expect(operation.responses['401']).toBeDefined();
    }
  });

  it('documents the list filters with their allowed values', () => {
    const parameters = document.paths['/admin/events'].get.parameters ?? [];
    expect(parameters.map((parameter) => parameter.name).sort()).toEqual([
      'cursor',
      'eventName',
      'kind',
      'limit',
      'memberId',
      'order',
      'since',
      'source',
      'status',
      'until',
    ]);
  });

  it('resolves every schema reference', () => {
    const refs = refsIn(document);
    expect(refs.length).toBeGreaterThan(0);
    for (const ref of refs) {
      const match = /^#\/components\/schemas\/(.+)$/.exec(ref);
      expect(match).not.toBeNull();
      expect(document.components.schemas[match![1]]).toBeDefined();
    }
  });

  it('documents the lifecycle fields of a portal and the license filter', () => {
    const summary = document.components.schemas.PortalSummaryDto as {
      properties: Record<string, unknown>;
    };
    expect(Object.keys(summary.properties)).toEqual(
      expect.arrayContaining(['appVersion', 'license']),
    );
    const license = document.components.schemas.LicenseDto as {
      properties: Record<string, unknown>;
    };
    expect(Object.keys(license.properties).sort()).toEqual(
      ['checkedAt', 'daysLeft', 'family', 'paymentExpired', 'state', 'status'].sort(),
    );
    const list = document.paths['/admin/portals'].get;
    expect(list.parameters?.map(({ name }) => name)).toEqual(
      expect.arrayContaining(['status', 'license']),
    );
  });

  it("documents a portal's placements in its detail view", () => {
    const detail = document.components.schemas.PortalDetailDto as {
      properties: Record<string, unknown>;
    };
    expect(Object.keys(detail.properties)).toEqual(
      expect.arrayContaining(['placements', 'placementsSyncedAt']),
    );
    const placement = document.components.schemas.BoundPlacementDto as {
      properties: Record<string, unknown>;
      required?: string[];
    };
    expect(Object.keys(placement.properties).sort()).toEqual(['code', 'title']);
    expect(placement.required).toEqual(['code']);
  });
});
