import { loadConfig } from '../config/app-config';
import { AppLogger, createPinoLogger } from '../logging/app-logger';
import { MetricsRegistry } from '../metrics/metrics.registry';
import type { DrainReport } from './drain-report';
import { DrainScheduler } from './drain-scheduler.service';
import type { DrainService } from './drain.service';

/** A drain whose passes the test finishes by hand, recording what the scheduler asked for. */
class ControlledDrains {
  readonly started: string[] = [];
  private readonly pending = new Map<string, ((report: DrainReport) => void)[]>();
  running = 0;
  maxRunning = 0;

  drainPortal = (memberId: string): Promise<DrainReport> => {
    this.started.push(memberId);
    this.running += 1;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    return new Promise((resolve) => {
      this.pending.set(memberId, [...(this.pending.get(memberId) ?? []), resolve]);
    });
  };

  finish(memberId: string, events = 0): void {
    const [resolve, ...rest] = this.pending.get(memberId) ?? [];
    if (!resolve) throw new Error(`no running drain of ${memberId}`);
    this.pending.set(memberId, rest);
    this.running -= 1;
    resolve({
      memberId,
      outcome: 'drained',
      events,
      pages: events > 0 ? 1 : 0,
      largestPage: events,
      recoveredBatches: 0,
      deliveryMode: 'exactly-once',
      durationMs: 1,
    });
  }
}

const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('DrainScheduler', () => {
  let drains: ControlledDrains;
  let scheduler: DrainScheduler;

  function createScheduler(concurrency: number): DrainScheduler {
    const config = loadConfig({
      BITRIX24_CLIENT_ID: 'id',
      BITRIX24_CLIENT_SECRET: 'secret',
      DRAIN_CONCURRENCY: String(concurrency),
    });
    return new DrainScheduler(
      drains as unknown as DrainService,
      config,
      new MetricsRegistry(),
      new AppLogger(createPinoLogger('silent')),
    );
  }

  beforeEach(() => {
    drains = new ControlledDrains();
    scheduler = createScheduler(2);
  });

  afterEach(() => scheduler.onModuleDestroy());

  it('never starts a drain in the caller’s stack', async () => {
    scheduler.request('p1');
    expect(drains.started).toEqual([]);
    await settle();
    expect(drains.started).toEqual(['p1']);
  });

  describe('follow-up spacing (fake timers)', () => {
    beforeEach(() => jest.useFakeTimers({ doNotFake: ['setImmediate'] }));
    afterEach(() => jest.useRealTimers());

    it('coalesces any number of requests during a running drain into exactly one more pass', async () => {
      scheduler.request('p1');
      await settle();
      for (let i = 0; i < 25; i += 1) scheduler.request('p1');
      await settle();
      expect(drains.started).toEqual(['p1']);

      drains.finish('p1');
      await settle();
      // The follow-up waits out the spacing (max(1, minTimeout) s since the last start).
      expect(drains.started).toEqual(['p1']);
      scheduler.request('p1');
      expect(scheduler.isScheduled('p1')).toBe(true);
      jest.advanceTimersByTime(1000);
      await settle();
      expect(drains.started).toEqual(['p1', 'p1']);
      drains.finish('p1');
      await settle();
      jest.advanceTimersByTime(5000);
      await settle();
      expect(drains.started).toEqual(['p1', 'p1']);
      expect(scheduler.isScheduled('p1')).toBe(false);
    });

    it('stretches the spacing while follow-ups find nothing, and resets it when one finds events', async () => {
      const startsAfter = async (ms: number): Promise<void> => {
        const before = drains.started.length;
        jest.advanceTimersByTime(ms - 1);
        await settle();
        expect(drains.started).toHaveLength(before);
        jest.advanceTimersByTime(1);
        await settle();
        expect(drains.started).toHaveLength(before + 1);
      };
      scheduler.request('p1');
      await settle();
      scheduler.request('p1');
      drains.finish('p1'); // first pass: no doubling yet
      await settle();
      await startsAfter(1000);
      scheduler.request('p1');
      drains.finish('p1'); // an empty follow-up: the next one waits twice as long
      await settle();
      await startsAfter(2000);
      scheduler.request('p1');
      drains.finish('p1', 50); // this follow-up found events: back to the base spacing
      await settle();
      await startsAfter(1000);
      drains.finish('p1');
    });

    it('runs the first pass after a quiet spell at once, without waiting for the spacing', async () => {
      scheduler.request('p1');
      await settle();
      drains.finish('p1');
      await settle();
      expect(scheduler.isScheduled('p1')).toBe(false);
      jest.advanceTimersByTime(1000); // the spacing since the last start is over
      scheduler.request('p1');
      await settle();
      expect(drains.started).toEqual(['p1', 'p1']);
      drains.finish('p1');
    });

    it('holds requests that come just after a pass ended until the spacing is over: one pass for all', async () => {
      scheduler.request('p1');
      await settle();
      jest.advanceTimersByTime(100);
      drains.finish('p1');
      await settle();
      expect(scheduler.isScheduled('p1')).toBe(false); // nothing pending after the pass
      jest.advanceTimersByTime(300);
      for (let i = 0; i < 30; i += 1) scheduler.request('p1');
      expect(scheduler.isScheduled('p1')).toBe(true);
      jest.advanceTimersByTime(599);
      await settle();
      expect(drains.started).toEqual(['p1']);
      jest.advanceTimersByTime(1);
      await settle();
      expect(drains.started).toEqual(['p1', 'p1']);
      drains.finish('p1');
    });

    it('waits twice the spacing for a request after an empty follow-up, then forgets the portal once it is over', async () => {
      scheduler.request('p1');
      await settle();
      scheduler.request('p1');
      drains.finish('p1'); // the first pass
      await settle();
      jest.advanceTimersByTime(1000);
      await settle();
      expect(drains.started).toHaveLength(2);
      drains.finish('p1'); // an empty follow-up: the next spacing is 2 s from its start
      await settle();
      jest.advanceTimersByTime(500);
      scheduler.request('p1'); // during rest
      jest.advanceTimersByTime(1499);
      await settle();
      expect(drains.started).toHaveLength(2);
      jest.advanceTimersByTime(1);
      await settle();
      expect(drains.started).toHaveLength(3);
      drains.finish('p1'); // empty again: 4 s of rest, after which the slot goes
      await settle();
      jest.advanceTimersByTime(4000);
      expect(jest.getTimerCount()).toBe(0);
      // A quiet spell longer than the spacing: the next request drains at once, from the base spacing.
      scheduler.request('p1');
      await settle();
      expect(drains.started).toHaveLength(4);
      scheduler.request('p1');
      drains.finish('p1');
      await settle();
      jest.advanceTimersByTime(1000);
      await settle();
      expect(drains.started).toHaveLength(5);
      drains.finish('p1');
    });

    it('lets runNow start a resting portal at once, and clears rest timers at shutdown', async () => {
      scheduler.request('p1');
      scheduler.request('p2');
      await settle();
      drains.finish('p1');
      drains.finish('p2');
      await settle();
      expect(jest.getTimerCount()).toBe(2); // both portals rest out their spacing

      const report = scheduler.runNow('p1');
      await settle();
      expect(drains.started).toEqual(['p1', 'p2', 'p1']);
      drains.finish('p1', 3);
      await expect(report).resolves.toMatchObject({ memberId: 'p1', events: 3 });

      scheduler.onModuleDestroy();
      expect(jest.getTimerCount()).toBe(0);
      expect(scheduler.isScheduled('p1')).toBe(false);
      expect(scheduler.isScheduled('p2')).toBe(false);
    });
  });

  it('coalesces requests for a queued portal into its one queued pass', async () => {
    scheduler.request('p1');
    scheduler.request('p2');
    scheduler.request('p3');
    scheduler.request('p3');
    await settle();
    expect(drains.started).toEqual(['p1', 'p2']);
    scheduler.request('p3');
    drains.finish('p1');
    await settle();
    expect(drains.started).toEqual(['p1', 'p2', 'p3']);
    drains.finish('p2');
    drains.finish('p3');
    await settle();
    expect(drains.started).toEqual(['p1', 'p2', 'p3']);
  });

  it('runs different portals concurrently, never more than DRAIN_CONCURRENCY', async () => {
    const portals = Array.from({ length: 7 }, (_, i) => `p${i}`);
    for (const memberId of portals) scheduler.request(memberId);
    await settle();
    expect(drains.running).toBe(2);
    for (const memberId of portals) {
      drains.finish(memberId);
      await settle();
    }
    expect(drains.maxRunning).toBe(2);
    expect([...drains.started].sort()).toEqual([...portals].sort());
  });

  it('runNow jumps the queue and answers with the pass that started after the call', async () => {
    scheduler.request('p1');
    scheduler.request('p2');
    scheduler.request('p3');
    await settle();
    const report = scheduler.runNow('p1'); // p1 is running: the answer is the next pass
    drains.finish('p1', 5);
    await settle();
    expect(drains.started).toEqual(['p1', 'p2', 'p1']);
    drains.finish('p1', 9);
    await expect(report).resolves.toMatchObject({ memberId: 'p1', events: 9 });
  });

  it('takes no new requests after shutdown began and drops queued ones', async () => {
    scheduler.request('p1');
    scheduler.request('p2');
    scheduler.request('p3');
    await settle();
    scheduler.onModuleDestroy();
    scheduler.request('p4');
    drains.finish('p1');
    drains.finish('p2');
    await settle();
    expect(drains.started).toEqual(['p1', 'p2']);
    await expect(scheduler.runNow('p5')).rejects.toMatchObject({ code: 'drain_stopping' });
  });
});
