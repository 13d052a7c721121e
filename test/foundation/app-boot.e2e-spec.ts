import { createTestDatabase, TestDatabase } from '../support/postgres';
import { startTestApp, TestApp } from '../support/test-app';

describe('the service on a real Postgres', () => {
  let database: TestDatabase;
  let testApp: TestApp;

  beforeAll(async () => {
    database = await createTestDatabase();
    testApp = await startTestApp({ databaseUrl: database.url });
  });

  afterAll(async () => {
    await testApp?.close();
    await database?.drop();
  });

  it('is live and ready once the database is reachable and migrated', async () => {
    const live = await fetch(`${testApp.url}/health/live`);
    expect(live.status).toBe(200);
    const ready = await fetch(`${testApp.url}/health/ready`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ok', database: 'up', migrations: 'applied' });
  });

  it('serves Prometheus text at /metrics', async () => {
    const response = await fetch(`${testApp.url}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/plain');
    expect(await response.text()).toContain('process_cpu_user_seconds_total');
  });

  it('answers unknown routes with 404 in the error format', async () => {
    const response = await fetch(`${testApp.url}/no/such/route`);
    expect(response.status).toBe(404);
    const body = (await response.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('not_found');
    expect(typeof body.error.message).toBe('string');
  });

  it('reports not ready while a migration is pending', async () => {
    const pending = await createTestDatabase({ migrated: false });
    const unmigrated = await startTestApp({ databaseUrl: pending.url });
    try {
      const ready = await fetch(`${unmigrated.url}/health/ready`);
      expect(ready.status).toBe(503);
      expect(((await ready.json()) as { error: { message: string } }).error.message).toMatch(
        /pending migrations/,
      );
    } finally {
      await unmigrated.close();
      await pending.drop();
    }
  });

  it('shuts down cleanly: the port closes and the pool is released', async () => {
    const other = await startTestApp({ databaseUrl: database.url });
    await other.close();
    await expect(fetch(`${other.url}/health/live`)).rejects.toThrow();
  });
});
