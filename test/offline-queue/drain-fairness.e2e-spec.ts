import { DrainScheduler } from '../../src/offline-queue/drain-scheduler.service';
import type { DirectlyInstalledPortal } from '../support/portal-fixtures';
import type { TestApp } from '../support/test-app';
import {
  DrainHarness,
  eventually,
  installBoundPortal,
  logLines,
  startDrainHarness,
  storedCounts,
} from './drain-harness';

/**
 * One drain slot, a portal with a deep backlog in it, and small portals that ask for a drain while
 * it runs: the backlog's pass gives the slot up after DRAIN_PASS_SLICE_SECONDS, so the small
 * portals are drained before the backlog is done, and the backlog still drains exactly once.
 */
describe('drain slots shared fairly', () => {
  let h: DrainHarness;
  let app: TestApp;

  beforeAll(async () => {
    h = await startDrainHarness();
    app = await h.startApp({
      DRAIN_CONCURRENCY: '1',
      DRAIN_PASS_SLICE_SECONDS: '1',
      DRAIN_PAGE_SIZE: '50',
      DRAIN_MAX_PAGE_SIZE: '200',
      LOG_LEVEL: 'debug',
    });
  });

  afterAll(async () => {
    await h?.close();
  });

  async function lastStoredMs(memberId: string): Promise<number> {
    const { rows } = await h.sql.query<{ last: string }>(
      `SELECT (extract(epoch FROM max(received_at)) * 1000)::bigint AS last
       FROM stored_events WHERE member_id = $1`,
      [memberId],
    );
    return Number(rows[0].last);
  }

  it('lets portals that wait for a slot in before a deep backlog is done, and the backlog still drains exactly once', async () => {
    const backlog = await installBoundPortal(h, app);
    // About 0.4 s of Bitrix24's time per 200-row page: the backlog takes several seconds.
    await h.emulator.control.setOperatingTime(backlog.memberId, {
      costs: { 'event.offline.get': { baseSeconds: 0.01, perRowSeconds: 0.002 } },
    });
    await h.emulator.control.enqueueOfflineEvents(backlog.memberId, { count: 3000, notify: false });
    const small: DirectlyInstalledPortal[] = [];
    for (let i = 0; i < 3; i += 1) {
      const portal = await installBoundPortal(h, app);
      await h.emulator.control.enqueueOfflineEvents(portal.memberId, { count: 10, notify: false });
      small.push(portal);
    }

    const scheduler = app.app.get(DrainScheduler);
    scheduler.request(backlog.memberId);
    // The backlog's pass holds the only slot; then the small portals ask.
    await eventually(
      async () => (await storedCounts(h.sql, backlog.memberId)).rows,
      (rows) => rows > 0,
    );
    for (const portal of small) scheduler.request(portal.memberId);

    await eventually(
      async () => (await storedCounts(h.sql, backlog.memberId)).rows,
      (rows) => rows === 3000,
      60_000,
    );
    await eventually(
      async () => {
        const counts: number[] = [];
        for (const portal of small) counts.push((await storedCounts(h.sql, portal.memberId)).rows);
        return counts;
      },
      (counts) => counts.every((rows) => rows === 10),
    );

    const backlogDoneAt = await lastStoredMs(backlog.memberId);
    for (const portal of small) {
      expect({
        portal: portal.memberId,
        before: (await lastStoredMs(portal.memberId)) < backlogDoneAt,
      }).toEqual({ portal: portal.memberId, before: true });
    }
    expect(
      logLines(app.logs, backlog.memberId, 'drain pass yields its slot').length,
    ).toBeGreaterThan(0);

    // Exactly once, and nothing left reserved by the passes that gave their slot up.
    expect(await storedCounts(h.sql, backlog.memberId)).toEqual({
      rows: 3000,
      distinctQueueIds: 3000,
    });
    const stats = await h.emulator.control.stats(backlog.memberId);
    expect(stats.queue).toMatchObject({ total: 0, reserved: 0 });
    const { rows } = await h.sql.query<{ uncleared: number }>(
      `SELECT count(*)::int AS uncleared FROM drain_batches
       WHERE member_id = $1 AND state = 'committed'`,
      [backlog.memberId],
    );
    expect(rows[0].uncleared).toBe(0);
  });
});
