import { Client } from 'pg';
import { startEmulator, type CreatedPortal, type RunningEmulator } from '../../src/emulator';
import { AppProcess, startAppProcess } from '../support/app-process';
import { createTestDatabase, TestDatabase } from '../support/postgres';
import { TEST_CLIENT_ID, TEST_CLIENT_SECRET } from '../support/test-app';
import { eventually, storedCounts } from './drain-harness';

const EVENTS = 300;

/**
 * The server runs as a real child process and is SIGKILLed in the middle of a drain; a restarted
 * server must end with every event stored exactly once and nothing left reserved in Bitrix24.
 */
describe('a drain killed with SIGKILL and restarted', () => {
  let database: TestDatabase;
  let emulator: RunningEmulator;
  let sql: Client;
  const running: AppProcess[] = [];

  beforeAll(async () => {
    database = await createTestDatabase();
    emulator = await startEmulator({ clientId: TEST_CLIENT_ID, clientSecret: TEST_CLIENT_SECRET });
    sql = new Client({ connectionString: database.url });
    await sql.connect();
  });

  afterEach(async () => {
    for (const app of running.splice(0)) await app.kill();
  });

  afterAll(async () => {
    await sql?.end();
    await emulator?.close();
    await database?.drop();
  });

  async function startServer(env: Record<string, string>, port?: number): Promise<AppProcess> {
    const app = await startAppProcess({
      databaseUrl: database.url,
      port,
      env: {
        BITRIX24_OAUTH_URL: emulator.url,
        DRAIN_PAGE_SIZE: '50',
        // Fixed pages, so the state at each crash point is exact; one case below lets them grow.
        DRAIN_MAX_PAGE_SIZE: '50',
        DRAIN_LEASE_SECONDS: '5',
        ...env,
      },
    });
    running.push(app);
    return app;
  }

  /** Installed the way an app without UI is: ONAPPINSTALL to the server, which binds its events. */
  async function installOn(app: AppProcess): Promise<CreatedPortal> {
    const portal = await emulator.control.createPortal();
    const { delivered } = await emulator.control.install(portal.memberId, {
      mode: 'event',
      handlerUrl: `${app.url}/bitrix24/events`,
    });
    expect(delivered.status).toBe(200);
    return portal;
  }

  /**
   * No event lost: whatever is not stored is still in Bitrix24's queue. Rows of a batch committed
   * but not yet cleared are in both, and there is at most one such page.
   */
  async function expectNothingLost(memberId: string): Promise<void> {
    const { rows, distinctQueueIds } = await storedCounts(sql, memberId);
    expect(rows).toBe(distinctQueueIds);
    const { queue } = await emulator.control.stats(memberId);
    expect(rows + queue.total).toBeGreaterThanOrEqual(EVENTS);
    expect(rows + queue.total).toBeLessThanOrEqual(EVENTS + 50);
  }

  async function restartAndFinish(crashed: AppProcess, memberId: string): Promise<void> {
    const restarted = await startServer({ POLL_INTERVAL_SECONDS: '1' }, crashed.port);
    const uncleared = async (): Promise<number> => {
      const { rows } = await sql.query<{ uncleared: number }>(
        `SELECT count(*)::int AS uncleared FROM drain_batches
         WHERE member_id = $1 AND state = 'committed'`,
        [memberId],
      );
      return rows[0].uncleared;
    };
    // The ledger records a clear just after Bitrix24 confirms it: wait for both sides to settle.
    await eventually(
      async () => ({
        stored: await storedCounts(sql, memberId),
        queue: (await emulator.control.stats(memberId)).queue,
        uncleared: await uncleared(),
      }),
      ({ stored, queue, uncleared: left }) =>
        stored.rows === EVENTS && queue.total === 0 && left === 0,
      40_000,
    );
    expect(await storedCounts(sql, memberId)).toEqual({ rows: EVENTS, distinctQueueIds: EVENTS });
    const stats = await emulator.control.stats(memberId);
    expect(stats.queue).toMatchObject({ total: 0, reserved: 0 });
    expect(stats.reservedProcessIds).toEqual([]);
    expect(await uncleared()).toBe(0);
    expect(restarted.logs.some((line) => line.includes('"msg":"reserved batch recovered"'))).toBe(
      true,
    );
  }

  const crashPoints: [
    string,
    string,
    { stored: number; reserved: number },
    Record<string, string>,
  ][] = [
    [
      'after Bitrix24 answered the get, before the commit',
      'after-get:2',
      { stored: 50, reserved: 50 },
      {},
    ],
    ['after the commit, before the clear', 'after-commit:2', { stored: 100, reserved: 50 }, {}],
    [
      'after the batch cleared page 2 and reserved page 3, before recording either',
      'after-batch:2',
      { stored: 100, reserved: 50 },
      {},
    ],
    [
      'with growing pages (50, 100, then 150 of 200 asked) after the batch reserved page 3',
      'after-batch:2',
      { stored: 150, reserved: 150 },
      { DRAIN_MAX_PAGE_SIZE: '1000' },
    ],
  ];

  it.each(crashPoints)(
    'killed %s: every event stored exactly once after a restart, nothing left reserved',
    async (_label, pausePoint, atCrash, env) => {
      const server = await startServer({ DRAIN_TEST_PAUSE_AT: pausePoint, ...env });
      const portal = await installOn(server);
      const enqueued = await emulator.control.enqueueOfflineEvents(portal.memberId, {
        count: EVENTS,
      });
      expect(enqueued.notificationsSent).toBe(1);

      await server.waitForLog(/"msg":"drain paused at test fault point"/);
      expect(await server.kill()).toMatchObject({ signal: 'SIGKILL' });

      expect((await storedCounts(sql, portal.memberId)).rows).toBe(atCrash.stored);
      expect((await emulator.control.stats(portal.memberId)).queue.reserved).toBe(atCrash.reserved);
      await expectNothingLost(portal.memberId);

      await restartAndFinish(server, portal.memberId);
    },
    60_000,
  );

  it('killed while the clear-and-get batch request is in flight: every event stored exactly once after a restart', async () => {
    const server = await startServer({});
    const portal = await installOn(server);
    await emulator.control.setFaults(portal.memberId, { latencyMs: 1500, methods: ['batch'] });
    await emulator.control.enqueueOfflineEvents(portal.memberId, { count: EVENTS });
    await eventually(
      () => storedCounts(sql, portal.memberId),
      (counts) => counts.rows >= 50,
    );
    await new Promise((resolve) => setTimeout(resolve, 500));
    await server.kill();
    await emulator.control.clearFaults(portal.memberId);
    // Let the emulator finish whatever the dead process had asked for.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await expectNothingLost(portal.memberId);

    await restartAndFinish(server, portal.memberId);
  }, 60_000);

  it('on SIGTERM stops taking pages, exits within 15 s without clearing anything uncommitted, and the next start finishes', async () => {
    const server = await startServer({});
    const portal = await installOn(server);
    await emulator.control.setFaults(portal.memberId, { latencyMs: 700 });
    await emulator.control.enqueueOfflineEvents(portal.memberId, { count: EVENTS });
    await eventually(
      () => storedCounts(sql, portal.memberId),
      (counts) => counts.rows >= 50,
    );

    const stopped = await server.terminate();
    expect(stopped.code).toBe(0);
    expect(stopped.ms).toBeLessThan(15_000);
    await emulator.control.clearFaults(portal.memberId);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await expectNothingLost(portal.memberId);
    expect((await storedCounts(sql, portal.memberId)).rows).toBeLessThan(EVENTS);
    // The lease was given back: a new start drains at once instead of waiting for it to expire.
    const { rows } = await sql.query(
      `SELECT lease_holder FROM offline_queue_states WHERE member_id = $1`,
      [portal.memberId],
    );
    expect(rows).toEqual([{ lease_holder: null }]);

    const restarted = await startServer({ POLL_INTERVAL_SECONDS: '1' }, server.port);
    await eventually(
      () => storedCounts(sql, portal.memberId),
      (counts) => counts.rows === EVENTS,
      40_000,
    );
    expect(await storedCounts(sql, portal.memberId)).toEqual({
      rows: EVENTS,
      distinctQueueIds: EVENTS,
    });
    await eventually(
      () => emulator.control.stats(portal.memberId),
      (stats) => stats.queue.total === 0,
    );
    expect((await emulator.control.stats(portal.memberId)).queue).toMatchObject({ reserved: 0 });
    expect((await restarted.terminate()).code).toBe(0);
  }, 90_000);
});
