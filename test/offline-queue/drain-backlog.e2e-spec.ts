import type { BatchBilling } from '../../src/emulator';
import { DrainService } from '../../src/offline-queue/drain.service';
import type { DrainReport } from '../../src/offline-queue/drain-report';
import type { TestApp } from '../support/test-app';
import {
  DrainHarness,
  installBoundPortal,
  logLines,
  startDrainHarness,
  storedCounts,
} from './drain-harness';

/** Operating time the emulator bills per event.offline.get: a base plus a share per returned row. */
const COST = { baseSeconds: 0.01, perRowSeconds: 0.001 };
/** The portal's limit in the tight cases, and what the app is told it is. */
const TIGHT_LIMIT_SECONDS = 2;

interface PageLine {
  asked: number;
  rows: number;
  next: number | 'deferred';
}

/**
 * A backlog drains in pages that grow from DRAIN_PAGE_SIZE to DRAIN_MAX_PAGE_SIZE, steered by the
 * operating time the portal reports, and never meets OPERATION_TIME_LIMIT: a tight limit ends the
 * pass `deferred` (everything taken stored and cleared) until the window lets go.
 */
describe('a drain with a backlog', () => {
  let h: DrainHarness;
  let app: TestApp;
  let tight: TestApp;

  beforeAll(async () => {
    h = await startDrainHarness();
    app = await h.startApp({ DRAIN_PAGE_SIZE: '50', DRAIN_MAX_PAGE_SIZE: '1000' });
    tight = await h.startApp({
      DRAIN_PAGE_SIZE: '50',
      DRAIN_MAX_PAGE_SIZE: '1000',
      BITRIX24_OPERATING_LIMIT_SECONDS: String(TIGHT_LIMIT_SECONDS),
    });
  });

  afterAll(async () => {
    await h?.close();
  });

  /** The drain's page decisions, in order, from its debug log. */
  function pagesOf(on: TestApp, memberId: string): PageLine[] {
    return logLines(on.logs, memberId, 'drain page').map((line) => {
      const { asked, rows, next } = JSON.parse(line) as PageLine;
      return { asked, rows, next };
    });
  }

  async function expectExactlyOnce(memberId: string, events: number): Promise<void> {
    expect(await storedCounts(h.sql, memberId)).toEqual({ rows: events, distinctQueueIds: events });
    const stats = await h.emulator.control.stats(memberId);
    expect(stats.queue).toMatchObject({ total: 0, reserved: 0 });
    expect(stats.reservedProcessIds).toEqual([]);
    const { rows } = await h.sql.query<{ uncleared: number }>(
      `SELECT count(*)::int AS uncleared FROM drain_batches
       WHERE member_id = $1 AND state = 'committed'`,
      [memberId],
    );
    expect(rows[0].uncleared).toBe(0);
  }

  it('grows its pages while they come back full, drains exactly once and shrinks back to DRAIN_PAGE_SIZE when the backlog is gone', async () => {
    const portal = await installBoundPortal(h, app);
    await h.emulator.control.setOperatingTime(portal.memberId, {
      costs: { 'event.offline.get': { baseSeconds: 0.01, perRowSeconds: 0.0002 } },
    });
    await h.emulator.control.enqueueOfflineEvents(portal.memberId, { count: 5000, notify: false });

    const requestsBefore = (await h.emulator.control.stats(portal.memberId)).httpRequests;
    const report = await app.app.get(DrainService).drainPortal(portal.memberId);

    expect(report).toMatchObject({ outcome: 'drained', events: 5000, pages: 9, largestPage: 1000 });
    expect(pagesOf(app, portal.memberId)).toEqual([
      { asked: 50, rows: 50, next: 100 },
      { asked: 100, rows: 100, next: 200 },
      { asked: 200, rows: 200, next: 400 },
      { asked: 400, rows: 400, next: 800 },
      { asked: 800, rows: 800, next: 1000 },
      { asked: 1000, rows: 1000, next: 1000 },
      { asked: 1000, rows: 1000, next: 1000 },
      { asked: 1000, rows: 1000, next: 1000 },
      { asked: 1000, rows: 450, next: 50 },
    ]);
    await expectExactlyOnce(portal.memberId, 5000);
    const stats = await h.emulator.control.stats(portal.memberId);
    expect(stats.operatingLimitRefusals).toBe(0);
    // One request per page still: the first get by itself, a clear-and-get batch per page (the
    // last finds the queue empty), and one event.offline.list for the first pass's adoption.
    expect(stats.httpRequests - requestsBefore).toBe(1 + 9 + 1);

    // The next pass starts at DRAIN_PAGE_SIZE again.
    await h.emulator.control.enqueueOfflineEvents(portal.memberId, { count: 30, notify: false });
    const after = await app.app.get(DrainService).drainPortal(portal.memberId);
    expect(after).toMatchObject({ outcome: 'drained', events: 30, largestPage: 30 });
    expect(pagesOf(app, portal.memberId).slice(9)).toEqual([{ asked: 50, rows: 30, next: 50 }]);
  });

  it.each<[BatchBilling]>([['commands'], ['batch']])(
    'with a tight operating limit (batches billed as %s) defers before the limit instead of meeting OPERATION_TIME_LIMIT, and finishes after the reset',
    async (batchBilling) => {
      const events = 2500;
      const portal = await installBoundPortal(h, tight);
      await h.emulator.control.setOperatingTime(portal.memberId, {
        limitSeconds: TIGHT_LIMIT_SECONDS,
        costs: { 'event.offline.get': COST },
        batchBilling,
      });
      await h.emulator.control.enqueueOfflineEvents(portal.memberId, {
        count: events,
        notify: false,
      });
      const drains = tight.app.get(DrainService);

      const first = await drains.drainPortal(portal.memberId);
      expect(first.outcome).toBe('deferred');
      expect(first.events).toBeGreaterThan(0);
      expect(first.events).toBeLessThan(events);
      // Until the oldest minute of the 10-minute window leaves it, plus a second.
      expect(first.retryInMs).toBeGreaterThan(8 * 60_000);
      expect(first.retryInMs).toBeLessThanOrEqual(10 * 60_000 + 1000);
      const stats = await h.emulator.control.stats(portal.memberId);
      expect(stats.operatingLimitRefusals).toBe(0);
      // Everything taken is stored and cleared: nothing reserved while the pass waits.
      expect(stats.queue).toMatchObject({ total: events - first.events, reserved: 0 });
      expect((await storedCounts(h.sql, portal.memberId)).rows).toBe(first.events);
      const billed = batchBilling === 'batch' ? 'batch' : 'event.offline.get';
      expect(stats.operatingTime[billed].peakSeconds).toBeLessThanOrEqual(
        TIGHT_LIMIT_SECONDS * 0.8,
      );
      const state = await h.sql.query<{ next_attempt_at: Date; consecutive_failures: number }>(
        `SELECT next_attempt_at, consecutive_failures FROM offline_queue_states
         WHERE member_id = $1`,
        [portal.memberId],
      );
      expect(state.rows[0].consecutive_failures).toBe(0);
      expect(state.rows[0].next_attempt_at.getTime()).toBeGreaterThan(Date.now() + 8 * 60_000);
      expect(pagesOf(tight, portal.memberId).at(-1)?.next).toBe('deferred');

      // The window lets go (the emulator's clock moves on); later passes take the rest.
      const reports: DrainReport[] = [first];
      while (reports.at(-1)!.outcome === 'deferred' && reports.length < 6) {
        await h.emulator.control.advanceClock(600);
        reports.push(await drains.drainPortal(portal.memberId));
      }
      expect(reports.at(-1)!.outcome).toBe('drained');
      expect(reports.every((r) => r.outcome === 'deferred' || r.outcome === 'drained')).toBe(true);
      expect(reports.reduce((sum, r) => sum + r.events, 0)).toBe(events);
      await expectExactlyOnce(portal.memberId, events);
      expect((await h.emulator.control.stats(portal.memberId)).operatingLimitRefusals).toBe(0);
    },
    60_000,
  );

  it('answered OPERATION_TIME_LIMIT all the same (the portal allows less than configured), defers until the reset without calling again, nothing lost or doubled', async () => {
    const portal = await installBoundPortal(h, app);
    await h.emulator.control.setOperatingTime(portal.memberId, {
      limitSeconds: 0.5,
      costs: { 'event.offline.get': COST },
    });
    await h.emulator.control.enqueueOfflineEvents(portal.memberId, { count: 2000, notify: false });
    const drains = app.app.get(DrainService);

    const report = await drains.drainPortal(portal.memberId);
    // 50 + 100 + 200 + 400 rows ran; the get of the next page was refused inside its batch.
    expect(report).toMatchObject({ outcome: 'deferred', events: 750 });
    expect(report.retryInMs).toBeGreaterThan(8 * 60_000);
    const stats = await h.emulator.control.stats(portal.memberId);
    expect(stats.operatingLimitRefusals).toBe(1);
    expect(stats.queue).toMatchObject({ total: 1250, reserved: 0 });
    expect(await storedCounts(h.sql, portal.memberId)).toEqual({
      rows: 750,
      distinctQueueIds: 750,
    });

    // A pass asked for in the meantime sends no get: the method waits for its window here.
    const again = await drains.drainPortal(portal.memberId);
    expect(again).toMatchObject({ outcome: 'deferred', events: 0 });
    const later = await h.emulator.control.stats(portal.memberId);
    expect(later.restCalls['event.offline.get']).toBe(stats.restCalls['event.offline.get']);
    expect(later.restCalls.batch).toBe(stats.restCalls.batch);
    expect(later.operatingLimitRefusals).toBe(1);
  });
});
