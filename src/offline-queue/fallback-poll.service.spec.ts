import { DataSource } from 'typeorm';
import { createTestDatabase, TestDatabase } from '../../test/support/postgres';
import { loadConfig } from '../config/app-config';
import { dataSourceOptions } from '../database/data-source-options';
import { AppLogger, createPinoLogger } from '../logging/app-logger';
import type { DrainScheduler } from './drain-scheduler.service';
import { FallbackPollService } from './fallback-poll.service';

/** Records when each drain was requested; portals in `busy` count as already scheduled here. */
class RecordingScheduler {
  readonly requests: { memberId: string; at: number }[] = [];
  readonly busy = new Set<string>();

  request(memberId: string): void {
    this.requests.push({ memberId, at: Date.now() });
  }

  isScheduled(memberId: string): boolean {
    return this.busy.has(memberId);
  }
}

describe('FallbackPollService (real Postgres)', () => {
  let database: TestDatabase;
  let dataSource: DataSource;
  const config = loadConfig({
    BITRIX24_CLIENT_ID: 'id',
    BITRIX24_CLIENT_SECRET: 'secret',
    POLL_INTERVAL_SECONDS: '1',
  });
  const logger = new AppLogger(createPinoLogger('silent'));

  beforeAll(async () => {
    database = await createTestDatabase();
    dataSource = new DataSource(dataSourceOptions(database.url, { poolSize: 2 }));
    await dataSource.initialize();
    const portal = (memberId: string, status: string): string =>
      `('${memberId}', '${memberId}.example', 'https://${memberId}.example/rest/', '${status}')`;
    await dataSource.query(
      `INSERT INTO portals (member_id, domain, client_endpoint, status) VALUES ${[
        ...Array.from({ length: 20 }, (_, i) => portal(`due-${i}`, 'active')),
        portal('fresh', 'active'),
        portal('running-elsewhere', 'active'),
        portal('gone', 'uninstalled'),
        portal('unpaid', 'payment_required'),
      ].join(', ')}`,
    );
    await dataSource.query(
      `INSERT INTO offline_queue_states (member_id, last_drain_started_at, last_drain_finished_at)
       VALUES ('due-0', now() - interval '1 hour', now() - interval '1 hour'),
              ('fresh', NULL, NULL), ('running-elsewhere', NULL, NULL)`,
    );
  });

  beforeEach(async () => {
    // One drained just now; one whose drain another replica started just now.
    await dataSource.query(
      `UPDATE offline_queue_states SET
         last_drain_started_at = now() - interval '100 milliseconds',
         last_drain_finished_at = CASE member_id WHEN 'fresh' THEN now()
                                                 ELSE now() - interval '1 hour' END
       WHERE member_id IN ('fresh', 'running-elsewhere')`,
    );
  });

  afterAll(async () => {
    await dataSource?.destroy();
    await database?.drop();
  });

  it('requests a drain of every active portal not drained within the interval, spread over it', async () => {
    const scheduler = new RecordingScheduler();
    const service = new FallbackPollService(
      dataSource,
      scheduler as unknown as DrainScheduler,
      config,
      logger,
    );
    const startedAt = Date.now();
    expect(await service.pollOnce(() => 0.5)).toBe(20);

    const requested = scheduler.requests.map((request) => request.memberId);
    expect([...requested].sort()).toEqual(Array.from({ length: 20 }, (_, i) => `due-${i}`).sort());
    // Never drained go first, then the longest ago.
    expect(requested.at(-1)).toBe('due-0');
    // 20 portals over 80% of a 1 s interval: one every ~40 ms, not a burst.
    const offsets = scheduler.requests.map((request) => request.at - startedAt);
    expect(offsets[0]).toBeLessThan(100);
    expect(offsets.at(-1)).toBeGreaterThanOrEqual(700);
    expect(offsets.at(-1)).toBeLessThan(1000);
    for (let i = 5; i < offsets.length; i += 5) {
      expect(offsets[i] - offsets[i - 5]).toBeGreaterThanOrEqual(150);
    }
  });

  it('leaves out portals whose drain is already queued or running in this process', async () => {
    const scheduler = new RecordingScheduler();
    for (let i = 0; i < 15; i += 1) scheduler.busy.add(`due-${i}`);
    const service = new FallbackPollService(
      dataSource,
      scheduler as unknown as DrainScheduler,
      config,
      logger,
    );
    expect(await service.pollOnce()).toBe(5);
    expect(scheduler.requests.map((request) => request.memberId).sort()).toEqual(
      ['due-15', 'due-16', 'due-17', 'due-18', 'due-19'].sort(),
    );
  });

  it('stops handing out requests when the application shuts down', async () => {
    const scheduler = new RecordingScheduler();
    const service = new FallbackPollService(
      dataSource,
      scheduler as unknown as DrainScheduler,
      config,
      logger,
    );
    const pass = service.pollOnce(() => 0.5);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const startedStopping = Date.now();
    service.onModuleDestroy();
    await pass;
    expect(Date.now() - startedStopping).toBeLessThan(100);
    expect(scheduler.requests.length).toBeGreaterThan(0);
    expect(scheduler.requests.length).toBeLessThan(20);
  });
});
