import { DataSource } from 'typeorm';
import { PortalEntity } from '../../src/portals/portal.entity';
import { createTestDatabase, TestDatabase } from '../support/postgres';
import { startTestApp, TEST_ADMIN_TOKEN, TestApp } from '../support/test-app';
import { ADMIN_ROUTES, bearer, urlOf } from './admin-routes';

interface ErrorBody {
  error: { code: string; message: string };
}

describe('admin API authentication', () => {
  let database: TestDatabase;
  let testApp: TestApp;
  let portal: PortalEntity;

  beforeAll(async () => {
    database = await createTestDatabase();
    testApp = await startTestApp({
      databaseUrl: database.url,
      // Every route is tried with a wrong token below; keep the limiter out of that table.
      env: { ADMIN_AUTH_MAX_FAILURES_PER_MINUTE: '1000' },
    });
    portal = await testApp.app.get(DataSource).getRepository(PortalEntity).save({
      memberId: 'a1b2c3d4e5f60718293a4b5c6d7e8f90',
      domain: 'auth-test.bitrix24.com',
      clientEndpoint: 'https://auth-test.bitrix24.com/rest/',
      status: 'active',
    });
  });

  afterAll(async () => {
    await testApp?.close();
    await database?.drop();
  });

  const params = (): { memberId: string; id: string } => ({ memberId: portal.memberId, id: '1' });
  const credentials: ReadonlyArray<[string, Record<string, string>, string]> = [
    ['no Authorization header', {}, 'missing_bearer_token'],
    ['a wrong bearer token', bearer('x'.repeat(TEST_ADMIN_TOKEN.length)), 'invalid_bearer_token'],
    [
      'the token with one character changed',
      bearer(`${TEST_ADMIN_TOKEN.slice(0, -1)}0`),
      'invalid_bearer_token',
    ],
    ['a prefix of the token', bearer(TEST_ADMIN_TOKEN.slice(0, 16)), 'invalid_bearer_token'],
    [
      'the token as Basic credentials',
      { authorization: `Basic ${TEST_ADMIN_TOKEN}` },
      'missing_bearer_token',
    ],
    ['the token without a scheme', { authorization: TEST_ADMIN_TOKEN }, 'missing_bearer_token'],
  ];

  describe.each(ADMIN_ROUTES)('$method $path', ({ method, path }) => {
    it.each(credentials)(
      'answers 401 with %s and changes nothing',
      async (_label, headers, code) => {
        const response = await fetch(`${testApp.url}${urlOf(path, params())}`, {
          method,
          headers,
        });
        expect(response.status).toBe(401);
        expect(response.headers.get('www-authenticate')).toMatch(/^Bearer/);
        expect(((await response.json()) as ErrorBody).error.code).toBe(code);
        const stored = await testApp.app
          .get(DataSource)
          .getRepository(PortalEntity)
          .findOneByOrFail({ memberId: portal.memberId });
        expect(stored.status).toBe('active');
      },
    );
  });

  it('lets the right token through', async () => {
    const response = await fetch(`${testApp.url}/admin/portals`, {
      headers: bearer(TEST_ADMIN_TOKEN),
    });
    expect(response.status).toBe(200);
  });

  it('never logs a presented token', () => {
    const wrongTokens = credentials.flatMap(([, headers]) =>
      Object.values(headers).map((value) => value.replace(/^\w+ /, '')),
    );
    for (const token of [...wrongTokens, TEST_ADMIN_TOKEN]) {
      expect(testApp.logs.filter((line) => line.includes(token))).toEqual([]);
    }
  });
});

describe('admin API without ADMIN_TOKEN', () => {
  let database: TestDatabase;
  let testApp: TestApp;

  beforeAll(async () => {
    database = await createTestDatabase();
    testApp = await startTestApp({ databaseUrl: database.url, env: { ADMIN_TOKEN: undefined } });
  });

  afterAll(async () => {
    await testApp?.close();
    await database?.drop();
  });

  it.each(ADMIN_ROUTES)(
    'answers 503 on $method $path, whatever token is sent',
    async ({ method, path }) => {
      for (const headers of [{}, bearer(TEST_ADMIN_TOKEN)]) {
        const response = await fetch(`${testApp.url}${urlOf(path, { memberId: 'abc', id: '1' })}`, {
          method,
          headers,
        });
        expect(response.status).toBe(503);
        const body = (await response.json()) as ErrorBody;
        expect(body.error.code).toBe('admin_api_disabled');
        expect(body.error.message).toMatch(/ADMIN_TOKEN/);
      }
    },
  );

  it('still serves the API documentation', async () => {
    const response = await fetch(`${testApp.url}/admin/docs`);
    expect(response.status).toBe(200);
  });
});

describe('admin API failed-attempt limit', () => {
  let database: TestDatabase;
  let testApp: TestApp;

  beforeAll(async () => {
    database = await createTestDatabase();
    testApp = await startTestApp({
      databaseUrl: database.url,
      env: { ADMIN_AUTH_MAX_FAILURES_PER_MINUTE: '3' },
    });
  });

  afterAll(async () => {
    await testApp?.close();
    await database?.drop();
  });

  it('answers 429 with Retry-After once an address has sent too many wrong tokens', async () => {
    const attempt = (token: string): Promise<Response> =>
      fetch(`${testApp.url}/admin/stats`, { headers: bearer(token) });
    for (let failure = 0; failure < 3; failure++) {
      expect((await attempt(`wrong-${failure}`)).status).toBe(401);
    }
    const limited = await attempt('wrong-again');
    expect(limited.status).toBe(429);
    expect(((await limited.json()) as ErrorBody).error.code).toBe('too_many_failed_attempts');
    const retryAfter = Number(limited.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
  });

  it('lets the right token through from an address that is throttled for wrong ones', async () => {
    // Failures are counted in the database: a fresh one, so the test above does not count here.
    const own = await createTestDatabase();
    const other = await startTestApp({
      databaseUrl: own.url,
      env: { ADMIN_AUTH_MAX_FAILURES_PER_MINUTE: '2' },
    });
    const attempt = (token: string): Promise<Response> =>
      fetch(`${other.url}/admin/stats`, { headers: bearer(token) });
    try {
      for (let failure = 0; failure < 2; failure++) {
        expect((await attempt(`stale-script-${failure}`)).status).toBe(401);
      }
      expect((await attempt('stale-script-again')).status).toBe(429);

      expect((await attempt(TEST_ADMIN_TOKEN)).status).toBe(200);
      const stillLimited = await attempt('stale-script-after');
      expect(stillLimited.status).toBe(429);
      expect(((await stillLimited.json()) as ErrorBody).error.code).toBe(
        'too_many_failed_attempts',
      );
    } finally {
      await other.close();
      await own.drop();
    }
  });

  it('does not count requests without a token as guesses', async () => {
    const other = await startTestApp({
      databaseUrl: database.url,
      env: { ADMIN_AUTH_MAX_FAILURES_PER_MINUTE: '1' },
    });
    try {
      for (let request = 0; request < 3; request++) {
        expect((await fetch(`${other.url}/admin/stats`)).status).toBe(401);
      }
      const allowed = await fetch(`${other.url}/admin/stats`, {
        headers: bearer(TEST_ADMIN_TOKEN),
      });
      expect(allowed.status).toBe(200);
    } finally {
      await other.close();
    }
  });
});
