import { DrainScheduler } from '../../src/offline-queue/drain-scheduler.service';
import type { TestApp } from '../support/test-app';
import {
  DrainHarness,
  eventually,
  installBoundPortal,
  logLines,
  notifyOfflineEvent,
  startDrainHarness,
  storedCounts,
} from './drain-harness';

function drainPasses(app: TestApp, memberId: string): number {
  return (
    logLines(app.logs, memberId, 'drain finished').length +
    logLines(app.logs, memberId, 'drain failed').length
  );
}

describe('drain triggers: ONOFFLINEEVENT notifications and the fallback poller', () => {
  let h: DrainHarness;

  beforeAll(async () => {
    h = await startDrainHarness();
  });

  afterAll(async () => {
    await h?.close();
  });

  it('coalesces notifications that arrive during a running drain into at most one more pass', async () => {
    const app = await h.startApp();
    const portal = await installBoundPortal(h, app);
    await h.emulator.control.enqueueOfflineEvents(portal.memberId, { count: 250, notify: false });
    await h.emulator.control.setFaults(portal.memberId, { latencyMs: 300 });

    expect(await notifyOfflineEvent(app.url, portal)).toBe(200);
    const scheduler = app.app.get(DrainScheduler);
    await eventually(
      () => storedCounts(h.sql, portal.memberId),
      (counts) => counts.rows > 0,
    );
    const startedAt = Date.now();
    const statuses = await Promise.all(
      Array.from({ length: 20 }, () => notifyOfflineEvent(app.url, portal)),
    );
    // The webhook answers at once: the drain runs elsewhere.
    expect(Date.now() - startedAt).toBeLessThan(2000);
    expect(statuses.every((status) => status === 200)).toBe(true);

    await eventually(
      async () => scheduler.isScheduled(portal.memberId),
      (scheduled) => !scheduled,
    );
    await h.emulator.control.clearFaults(portal.memberId);
    expect(await storedCounts(h.sql, portal.memberId)).toEqual({
      rows: 250,
      distinctQueueIds: 250,
    });
    expect(drainPasses(app, portal.memberId)).toBe(2);
    const stats = await h.emulator.control.stats(portal.memberId);
    expect(stats.queue).toMatchObject({ total: 0, reserved: 0 });
    expect(stats.maxConcurrentOfflineGet).toBe(1);
  }, 60_000);

  it('picks up events enqueued without any notification with the fallback poller', async () => {
    const poller = await h.startApp({ POLL_INTERVAL_SECONDS: '2' });
    const portal = await installBoundPortal(h, poller);
    const enqueued = await h.emulator.control.enqueueOfflineEvents(portal.memberId, {
      count: 60,
      notify: false,
    });
    expect(enqueued).toMatchObject({ inserted: 60, notificationsSent: 0 });

    await eventually(
      () => storedCounts(h.sql, portal.memberId),
      (counts) => counts.rows === 60,
      20_000,
    );
    expect(await storedCounts(h.sql, portal.memberId)).toEqual({ rows: 60, distinctQueueIds: 60 });
    const stats = await h.emulator.control.stats(portal.memberId);
    expect(stats.notificationsSent).toBe(0);
    expect(stats.queue).toMatchObject({ total: 0, reserved: 0 });
  }, 30_000);
});
