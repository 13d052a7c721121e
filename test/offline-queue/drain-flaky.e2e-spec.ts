import type { TestApp } from '../support/test-app';
import {
  DrainHarness,
  eventually,
  installBoundPortal,
  startDrainHarness,
  storedCounts,
} from './drain-harness';

const EVENTS = 2000;

/**
 * One portal behind a flaky Bitrix24: 30% of its REST requests fail (10% 500s, 10% answers lost
 * after the request ran, 10% a gateway's 502/504 HTML page). Its events are drained exactly once
 * and nothing stays reserved; a healthy portal next to it drains meanwhile without waiting for it.
 */
describe('draining through a flaky Bitrix24', () => {
  let h: DrainHarness;
  let app: TestApp;

  beforeAll(async () => {
    h = await startDrainHarness();
    app = await h.startApp({
      DRAIN_PAGE_SIZE: '100',
      BITRIX24_REQUEST_TIMEOUT_MS: '1000',
      DRAIN_RETRY_BASE_MS: '200',
      DRAIN_RETRY_CAP_MS: '2000',
    });
  });

  afterAll(async () => {
    await h?.close();
  });

  it('drains 2,000 events exactly once with 30% of requests failing, and a healthy portal is not held up', async () => {
    const flaky = await installBoundPortal(h, app);
    const healthy = await installBoundPortal(h, app);
    await h.emulator.control.setFaults(flaky.memberId, {
      errorRate: 0.1,
      timeoutRate: 0.1,
      gatewayTimeoutRate: 0.1,
    });

    await h.emulator.control.enqueueOfflineEvents(flaky.memberId, { count: EVENTS });
    await h.emulator.control.enqueueOfflineEvents(healthy.memberId, { count: EVENTS });

    const healthyDone = eventually(
      () => storedCounts(h.sql, healthy.memberId),
      (counts) => counts.rows >= EVENTS,
      120_000,
    ).then(() => Date.now());
    const flakyDone = eventually(
      () => storedCounts(h.sql, flaky.memberId),
      (counts) => counts.rows >= EVENTS,
      240_000,
    ).then(() => Date.now());
    const [healthyAt, flakyAt] = await Promise.all([healthyDone, flakyDone]);

    // Settle: the flaky portal's last batch is cleared once its faults are gone.
    await h.emulator.control.clearFaults(flaky.memberId);
    await eventually(
      async () => (await h.emulator.control.stats(flaky.memberId)).queue,
      (queue) => queue.total === 0 && queue.reserved === 0,
      30_000,
    );
    for (const portal of [flaky, healthy]) {
      expect(await storedCounts(h.sql, portal.memberId)).toEqual({
        rows: EVENTS,
        distinctQueueIds: EVENTS,
      });
      expect((await h.emulator.control.stats(portal.memberId)).reservedProcessIds).toEqual([]);
    }
    // The healthy portal never queued behind the flaky one's retries.
    expect(healthyAt).toBeLessThanOrEqual(flakyAt);
    const stats = await h.emulator.control.stats(flaky.memberId);
    expect(stats.restCalls['event.offline.get'] ?? 0).toBeGreaterThan(0);
  }, 300_000);
});
