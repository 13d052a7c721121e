import type { TestApp } from '../support/test-app';
import {
  DrainHarness,
  eventually,
  installBoundPortal,
  startDrainHarness,
  storedCounts,
} from './drain-harness';

const EVENTS = 2000;
// The healthy portal's backlog is a quarter of the flaky one's, and the flaky portal also answers
// slowly: the healthy drain takes a fraction of the flaky one's time unless it waits behind the
// flaky portal's calls and retries, so the order in which the two finish shows whether it did, with
// a wide margin on a loaded machine.
const HEALTHY_EVENTS = EVENTS / 4;

/**
 * One portal behind a flaky Bitrix24: 30% of its REST requests fail (10% 500s, 10% answers lost
 * after the request ran, 10% a gateway's 502/504 HTML page). Its events are drained exactly once
 * and nothing stays reserved; a healthy portal next to it drains its smaller backlog meanwhile,
 * finishing first because it never waits for the flaky one.
 */
describe('draining through a flaky Bitrix24', () => {
  let h: DrainHarness;
  let app: TestApp;

  beforeAll(async () => {
    h = await startDrainHarness();
    app = await h.startApp({
      DRAIN_PAGE_SIZE: '100',
      // Fixed pages: this is about failing requests, not pages that grow with a backlog.
      DRAIN_MAX_PAGE_SIZE: '100',
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
      // Every answer from the flaky portal is also slow, so its drain takes seconds, not a moment.
      latencyMs: 100,
    });

    await h.emulator.control.enqueueOfflineEvents(flaky.memberId, { count: EVENTS });
    await h.emulator.control.enqueueOfflineEvents(healthy.memberId, { count: HEALTHY_EVENTS });

    const healthyDone = eventually(
      () => storedCounts(h.sql, healthy.memberId),
      (counts) => counts.rows >= HEALTHY_EVENTS,
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
    for (const [portal, events] of [
      [flaky, EVENTS],
      [healthy, HEALTHY_EVENTS],
    ] as const) {
      expect(await storedCounts(h.sql, portal.memberId)).toEqual({
        rows: events,
        distinctQueueIds: events,
      });
      expect((await h.emulator.control.stats(portal.memberId)).reservedProcessIds).toEqual([]);
    }
    // The healthy portal never queued behind the flaky one's retries.
    expect(healthyAt).toBeLessThanOrEqual(flakyAt);
    const stats = await h.emulator.control.stats(flaky.memberId);
    expect(stats.restCalls['event.offline.get'] ?? 0).toBeGreaterThan(0);
  }, 300_000);
});
