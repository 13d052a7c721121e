import { DrainService } from '../../src/offline-queue/drain.service';
import type { TestApp } from '../support/test-app';
import { DrainHarness, installBoundPortal, startDrainHarness, storedCounts } from './drain-harness';

/**
 * Offline-queue calls wait for their answer what the portal's own answer times call for, not the
 * generic BITRIX24_REQUEST_TIMEOUT_MS (30 s by default): a lost event.offline.get answer then costs
 * about a second, and the drain settles it by adoption as with any lost answer, so nothing is lost
 * or doubled by the shorter wait.
 */
describe('the wait for an offline-queue answer', () => {
  let h: DrainHarness;
  let app: TestApp;
  let drains: DrainService;

  beforeAll(async () => {
    h = await startDrainHarness();
    // The generic request timeout stays at its default of 30 s.
    app = await h.startApp({
      DRAIN_PAGE_SIZE: '50',
      BITRIX24_OFFLINE_REQUEST_TIMEOUT_MIN_MS: '500',
    });
    drains = app.app.get(DrainService);
  });

  afterAll(async () => {
    await h?.close();
  });

  function waitsOfTimeouts(error: string | undefined): number[] {
    return [...(error ?? '').matchAll(/no answer within (\d+) ms/g)].map((match) =>
      Number(match[1]),
    );
  }

  it("follows the portal's answers: a lost get costs the floor, not the 30 s request timeout, and the next pass adopts what it reserved", async () => {
    const portal = await installBoundPortal(h, app);
    // A fault-free drain first: the portal's answers (milliseconds on the emulator) are measured.
    await h.emulator.control.enqueueOfflineEvents(portal.memberId, { count: 60, notify: false });
    expect(await drains.drainPortal(portal.memberId)).toMatchObject({
      outcome: 'drained',
      events: 60,
    });

    await h.emulator.control.enqueueOfflineEvents(portal.memberId, { count: 120, notify: false });
    await h.emulator.control.setFaults(portal.memberId, {
      timeoutRate: 1,
      methods: ['event.offline.get'],
    });
    const failed = await drains.drainPortal(portal.memberId);
    expect(failed).toMatchObject({ outcome: 'failed', events: 0 });
    const waits = waitsOfTimeouts(failed.error);
    expect(waits.length).toBeGreaterThan(0);
    for (const wait of waits) {
      expect(wait).toBeGreaterThanOrEqual(500);
      expect(wait).toBeLessThan(30_000);
    }

    await h.emulator.control.clearFaults(portal.memberId);
    expect(await drains.drainPortal(portal.memberId)).toMatchObject({
      outcome: 'drained',
      recoveredBatches: 1,
      events: 120,
    });
    expect(await storedCounts(h.sql, portal.memberId)).toEqual({
      rows: 180,
      distinctQueueIds: 180,
    });
    const stats = await h.emulator.control.stats(portal.memberId);
    expect(stats.queue).toMatchObject({ total: 0, reserved: 0 });
  }, 90_000);
});
