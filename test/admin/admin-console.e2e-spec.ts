import { DataSource } from 'typeorm';
import { ADMIN_CONSOLE_HEADERS } from '../../src/admin/console/admin-console';
import { createTestDatabase, TestDatabase } from '../support/postgres';
import { startTestApp, TEST_ADMIN_TOKEN, TestApp } from '../support/test-app';
import { bearer } from './admin-routes';

interface Page<T> {
  items: T[];
  nextCursor: string | null;
}
interface PortalItem {
  memberId: string;
  domain: string;
  deliveryMode: string;
  lagSeconds: number;
}
interface ErrorBody {
  error: { code: string; message: string };
}

const FLEET = 10_000;

describe('admin console: the page and its assets', () => {
  let database: TestDatabase;
  let testApp: TestApp;
  let dataSource: DataSource;

  beforeAll(async () => {
    database = await createTestDatabase();
    testApp = await startTestApp({ databaseUrl: database.url });
    dataSource = testApp.app.get(DataSource);
    // A portal whose domain and member id must never appear in what the console serves.
    await dataSource.query(
      `INSERT INTO "portals" ("member_id", "domain", "client_endpoint", "status")
       VALUES ('secretmember0001', 'secret-portal.bitrix24.com',
               'https://secret-portal.bitrix24.com/rest/', 'active')`,
    );
  });

  afterAll(async () => {
    await testApp?.close();
    await database?.drop();
  });

  it.each(['/admin/ui', '/admin/ui/'])(
    'serves %s without the token, with no data and strict security headers',
    async (path) => {
      const response = await fetch(`${testApp.url}${path}`);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toMatch(/^text\/html/);
      const csp = response.headers.get('content-security-policy') ?? '';
      expect(csp).toContain("default-src 'none'");
      expect(csp).toContain("script-src 'self'");
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).not.toContain('unsafe-inline');
      expect(csp).not.toContain('unsafe-eval');
      expect(response.headers.get('x-frame-options')).toBe('DENY');
      expect(response.headers.get('referrer-policy')).toBe('no-referrer');
      expect(response.headers.get('x-content-type-options')).toBe('nosniff');
      expect(response.headers.get('cache-control')).toBe('no-store');
      const html = await response.text();
      expect(html).toContain('id="login-form"');
      expect(html).not.toContain('secret');
      // Scripts only by src (CSP would refuse inline ones anyway): no <script> with a body.
      expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    },
  );

  it.each([
    ['/admin/ui/console.js', /javascript/],
    ['/admin/ui/api.js', /javascript/],
    ['/admin/ui/console.css', /text\/css/],
    ['/admin/ui/vendor/uPlot.iife.min.js', /javascript/],
    ['/admin/ui/vendor/uPlot.min.css', /text\/css/],
  ])('serves the asset %s without the token', async (path, contentType) => {
    const response = await fetch(`${testApp.url}${path}`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(contentType);
    for (const [name, value] of Object.entries(ADMIN_CONSOLE_HEADERS)) {
      expect(response.headers.get(name)).toBe(value);
    }
    expect((await response.text()).length).toBeGreaterThan(100);
  });

  it('serves nothing else under /admin/ui, and the API behind it still wants the token', async () => {
    for (const path of [
      '/admin/ui/../../package.json',
      '/admin/ui/%2e%2e%2fpackage.json',
      '/admin/ui/nope.js',
      '/admin/ui/vendor/uPlot.esm.js',
    ]) {
      expect((await fetch(`${testApp.url}${path}`)).status).toBe(404);
    }
    expect((await fetch(`${testApp.url}/admin/portals`)).status).toBe(401);
  });

  describe(`portal search and filters over ${FLEET} portals`, () => {
    beforeAll(async () => {
      // Cheap fleet: one INSERT … SELECT; every 10th portal is at-most-once.
      await dataSource.query(
        `INSERT INTO "portals" ("member_id", "domain", "client_endpoint", "status", "delivery_mode")
         SELECT 'fleet' || lpad(n::text, 5, '0'),
                'shop' || n || '.bitrix24.de',
                'https://shop' || n || '.bitrix24.de/rest/',
                'active',
                CASE WHEN n % 10 = 0 THEN 'at-most-once' ELSE 'exactly-once' END
           FROM generate_series(1, $1::int) AS n`,
        [FLEET],
      );
      await dataSource.query(
        `INSERT INTO "portals" ("member_id", "domain", "client_endpoint", "status")
         VALUES ('ab_cd_literal', 'under_score.bitrix24.com', 'https://u/rest/', 'active'),
                ('abxcdxother', 'Mixed-Case.Bitrix24.com', 'https://m/rest/', 'active')`,
      );
      await dataSource.query('ANALYZE "portals"');
    });

    const get = async <T>(path: string): Promise<{ status: number; body: T }> => {
      const response = await fetch(`${testApp.url}${path}`, {
        headers: bearer(TEST_ADMIN_TOKEN),
      });
      return { status: response.status, body: (await response.json()) as T };
    };

    it('answers one page at a time with lag at a glance, never the whole fleet', async () => {
      const first = await get<Page<PortalItem>>('/admin/portals');
      expect(first.status).toBe(200);
      expect(first.body.items).toHaveLength(50);
      expect(first.body.nextCursor).not.toBeNull();
      expect(first.body.items[0]).toMatchObject({ lagSeconds: 0 });
    });

    it('finds portals by domain prefix, case-insensitively, and by member id prefix', async () => {
      const byDomain = await get<Page<PortalItem>>('/admin/portals?q=SHOP1234.');
      expect(byDomain.body.items.map((portal) => portal.domain)).toEqual(['shop1234.bitrix24.de']);

      const byMember = await get<Page<PortalItem>>('/admin/portals?q=fleet0999');
      expect(byMember.body.items.map((portal) => portal.memberId)).toEqual([
        'fleet09990',
        'fleet09991',
        'fleet09992',
        'fleet09993',
        'fleet09994',
        'fleet09995',
        'fleet09996',
        'fleet09997',
        'fleet09998',
        'fleet09999',
      ]);

      const mixed = await get<Page<PortalItem>>('/admin/portals?q=mixed-case');
      expect(mixed.body.items.map((portal) => portal.memberId)).toEqual(['abxcdxother']);
    });

    it('takes LIKE wildcards in the search literally', async () => {
      const underscore = await get<Page<PortalItem>>('/admin/portals?q=ab_cd');
      expect(underscore.body.items.map((portal) => portal.memberId)).toEqual(['ab_cd_literal']);
    });

    it('pages a search and a delivery-mode filter with their own cursors', async () => {
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const suffix: string = cursor ? `&cursor=${encodeURIComponent(cursor)}` : '';
        const page: { status: number; body: Page<PortalItem> } = await get<Page<PortalItem>>(
          `/admin/portals?q=shop12&deliveryMode=at-most-once&limit=4${suffix}`,
        );
        expect(page.status).toBe(200);
        for (const portal of page.body.items) {
          expect(portal.deliveryMode).toBe('at-most-once');
          expect(portal.domain.startsWith('shop12')).toBe(true);
        }
        seen.push(...page.body.items.map((portal) => portal.memberId));
        cursor = page.body.nextCursor;
      } while (cursor);
      // Of shop12, shop120…129 and shop1200…1299, those divisible by 10: 120 and 1200…1290.
      expect(seen).toHaveLength(1 + 10);
      expect(new Set(seen).size).toBe(seen.length);
      expect([...seen].sort()).toEqual(seen);

      const first = await get<Page<PortalItem>>('/admin/portals?q=shop12&limit=2');
      const reused = await get<ErrorBody>(
        `/admin/portals?q=shop13&limit=2&cursor=${first.body.nextCursor}`,
      );
      expect(reused.status).toBe(400);
      expect(reused.body.error.code).toBe('invalid_cursor');
    });

    it('uses the prefix indexes for a search', async () => {
      const plan = await dataSource.query<{ 'QUERY PLAN': string }[]>(
        `EXPLAIN SELECT "member_id" FROM "portals"
          WHERE lower("domain") LIKE 'shop1234.%' OR "member_id" LIKE 'shop1234.%'
          ORDER BY "member_id" LIMIT 51`,
      );
      const text = plan.map((row) => row['QUERY PLAN']).join('\n');
      expect(text).toContain('ix_portals_domain_prefix');
      expect(text).toContain('ix_portals_member_id_prefix');
    });

    it.each([
      ['an unknown delivery mode', '/admin/portals?deliveryMode=twice'],
      ['SQL in the search', `/admin/portals?q=${encodeURIComponent("a' OR '1'='1")}`],
      ['a percent sign in the search', '/admin/portals?q=%25'],
      ['an empty search', '/admin/portals?q='],
      ['a search longer than a host name', `/admin/portals?q=${'a'.repeat(256)}`],
    ])('refuses %s with 400', async (_name, path) => {
      const answer = await get<ErrorBody>(path);
      expect(answer.status).toBe(400);
      expect(answer.body.error.code).toBeDefined();
    });
  });
});
