import type { DrainReport } from '../../src/offline-queue/drain-report';
import { DrainService } from '../../src/offline-queue/drain.service';
import type { TestApp } from '../support/test-app';
import {
  DrainHarness,
  installBoundPortal,
  logLines,
  startDrainHarness,
  storedCounts,
} from './drain-harness';

/**
 * The emulator's timeoutRate fault carries a request out and withholds its answer, as a network
 * that drops the answer would. event.offline.get takes rows as it answers (reserves them with
 * clear=0, deletes them with clear=1), so it is never repeated blindly after such a failure: the
 * same pass adopts what the lost answer may have reserved and settles what it may have cleared,
 * then goes on; only when even that cannot be done does the pass fail, for the next to finish.
 */
describe('drains whose event.offline.get answers are lost', () => {
  let h: DrainHarness;
  let app: TestApp;
  let drains: DrainService;

  beforeAll(async () => {
    h = await startDrainHarness();
    // The shortest request timeout the configuration allows: each lost answer costs one second.
    // Fixed pages of 50 (no growth on a backlog), so each lost answer's batch is known.
    app = await h.startApp({
      DRAIN_PAGE_SIZE: '50',
      DRAIN_MAX_PAGE_SIZE: '50',
      BITRIX24_REQUEST_TIMEOUT_MS: '1000',
    });
    drains = app.app.get(DrainService);
  });

  afterAll(async () => {
    await h?.close();
  });

  async function emulatorState(memberId: string) {
    const stats = await h.emulator.control.stats(memberId);
    return {
      total: stats.queue.total,
      reserved: stats.queue.reserved,
      reservedProcessIds: stats.reservedProcessIds,
      restCalls: stats.restCalls,
    };
  }

  /** Every event stored exactly once, and nothing left (or reserved) in Bitrix24's queue. */
  async function expectStoredOnceAndQueueEmpty(memberId: string, events: number): Promise<void> {
    expect(await storedCounts(h.sql, memberId)).toEqual({
      rows: events,
      distinctQueueIds: events,
    });
    expect(await emulatorState(memberId)).toMatchObject({
      total: 0,
      reserved: 0,
      reservedProcessIds: [],
    });
  }

  async function metricValue(name: string): Promise<number> {
    const text = await (await fetch(`${app.url}/metrics`)).text();
    const line = text.split('\n').find((candidate) => candidate.startsWith(`${name} `));
    return line === undefined ? 0 : Number(line.slice(name.length + 1));
  }

  it('does not repeat a first get whose answer was lost; when its batch cannot be read either, the next pass adopts it', async () => {
    const portal = await installBoundPortal(h, app);
    await h.emulator.control.enqueueOfflineEvents(portal.memberId, { count: 120, notify: false });
    await h.emulator.control.setFaults(portal.memberId, {
      timeoutRate: 1,
      methods: ['event.offline.get'],
    });

    const failed = await drains.drainPortal(portal.memberId);
    expect(failed).toMatchObject({ outcome: 'failed', events: 0 });
    expect(failed.error).toContain('REQUEST_TIMEOUT');
    const stranded = await emulatorState(portal.memberId);
    // Never repeated blindly: one batch reserved, not one per retry (its own reads, with its
    // process_id, also lost their answers, so the pass gave up).
    expect(stranded.reservedProcessIds).toHaveLength(1);
    expect(stranded.reserved).toBe(50);
    expect(
      logLines(app.logs, portal.memberId, 'Bitrix24 request may have run without an answer'),
    ).toHaveLength(1);

    await h.emulator.control.clearFaults(portal.memberId);
    const next = await drains.drainPortal(portal.memberId);
    expect(next).toMatchObject({ outcome: 'drained', recoveredBatches: 1, events: 120 });
    expect(logLines(app.logs, portal.memberId, 'reserved batch recovered')).toHaveLength(1);
    await expectStoredOnceAndQueueEmpty(portal.memberId, 120);
  }, 30_000);

  it('settles a clear-and-get batch whose answer was lost within the same pass and drains everything', async () => {
    const portal = await installBoundPortal(h, app);
    await h.emulator.control.enqueueOfflineEvents(portal.memberId, { count: 120, notify: false });
    // Gets are answered; every batch that clears a page and reserves the next is not.
    await h.emulator.control.setFaults(portal.memberId, { timeoutRate: 1, methods: ['batch'] });

    const report = await drains.drainPortal(portal.memberId);

    // Page 1 committed, its batch lost (page 1 cleared, page 2 reserved): page 1's clear is
    // confirmed and page 2 adopted at once; page 3 likewise; then the queue is empty.
    expect(report).toMatchObject({ outcome: 'drained', events: 120, recoveredBatches: 3 });
    const after = await emulatorState(portal.memberId);
    expect(after.restCalls.batch).toBe(2);
    await expectStoredOnceAndQueueEmpty(portal.memberId, 120);
    const { rows: batches } = await h.sql.query(
      `SELECT count(*)::int AS uncleared FROM drain_batches
       WHERE member_id = $1 AND state <> 'cleared'`,
      [portal.memberId],
    );
    expect(batches).toEqual([{ uncleared: 0 }]);
    expect(logLines(app.logs, portal.memberId, 'offline-queue answer lost')).toHaveLength(2);
    await h.emulator.control.clearFaults(portal.memberId);
  }, 30_000);

  it('stores every event once and leaves nothing reserved when answers of any request get lost at random', async () => {
    const portal = await installBoundPortal(h, app);
    await h.emulator.control.enqueueOfflineEvents(portal.memberId, { count: 300, notify: false });
    await h.emulator.control.setFaults(portal.memberId, { timeoutRate: 0.3 });

    const outcomes: DrainReport['outcome'][] = [];
    for (let pass = 0; pass < 12; pass += 1) {
      const report = await drains.drainPortal(portal.memberId);
      outcomes.push(report.outcome);
      const counts = await storedCounts(h.sql, portal.memberId);
      if (report.outcome === 'drained' && counts.rows === 300) break;
    }
    await h.emulator.control.clearFaults(portal.memberId);
    expect(await drains.drainPortal(portal.memberId)).toMatchObject({ outcome: 'drained' });

    await expectStoredOnceAndQueueEmpty(portal.memberId, 300);
  }, 120_000);

  it('at-most-once (clear=1): a read whose answer was lost is not repeated, and the possible loss is logged and counted', async () => {
    const portal = await installBoundPortal(h, app, {
      portal: { features: { rest_offline_extended: false } },
    });
    await h.emulator.control.enqueueOfflineEvents(portal.memberId, { count: 1000, notify: false });
    const countedBefore = await metricValue(
      'offline_queue_possible_losses_total{reason="answer_lost"}',
    );
    // Every get (the clear=0 probe, answered WRONG_LICENSE, and the clear=1 reads) may lose its
    // answer; a pass ends at the first lost one.
    await h.emulator.control.setFaults(portal.memberId, {
      timeoutRate: 0.5,
      methods: ['event.offline.get'],
    });
    const lossMessage = 'at-most-once read (clear=1) got no answer';
    for (let pass = 0; pass < 30; pass += 1) {
      const report = await drains.drainPortal(portal.memberId);
      if (logLines(app.logs, portal.memberId, lossMessage).length > 0) {
        expect(report.outcome).toBe('failed');
        break;
      }
    }
    await h.emulator.control.clearFaults(portal.memberId);
    const warned = logLines(app.logs, portal.memberId, lossMessage).length;
    expect(warned).toBeGreaterThanOrEqual(1);

    expect(await drains.drainPortal(portal.memberId)).toMatchObject({
      outcome: 'drained',
      deliveryMode: 'at-most-once',
    });
    const stored = await storedCounts(h.sql, portal.memberId);
    expect(stored.rows).toBe(stored.distinctQueueIds);
    // Each lost answer took (deleted) at most one page of 50 rows, and each was reported.
    expect(1000 - stored.rows).toBeGreaterThanOrEqual(50);
    expect(1000 - stored.rows).toBeLessThanOrEqual(50 * warned);
    expect(await emulatorState(portal.memberId)).toMatchObject({ total: 0, reserved: 0 });
    expect(
      (await metricValue('offline_queue_possible_losses_total{reason="answer_lost"}')) -
        countedBefore,
    ).toBe(warned);
  }, 90_000);
});
