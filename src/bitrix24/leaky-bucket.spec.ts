import { LeakyBucket, MonotonicClock } from './leaky-bucket';

const clock: MonotonicClock = { now: () => Date.now() };

/** Starts `count` acquisitions and records the order in which they are let through. */
function acquireMany(bucket: LeakyBucket, count: number): number[] {
  const through: number[] = [];
  for (let index = 0; index < count; index++) {
    void bucket.acquire().then(() => through.push(index));
  }
  return through;
}

describe('LeakyBucket', () => {
  beforeEach(() => jest.useFakeTimers({ now: 1_000_000 }));
  afterEach(() => jest.useRealTimers());

  it('keeps a jitter margin of 0.5 s worth of requests below the burst, at least one', () => {
    expect(new LeakyBucket({ rps: 2, burst: 50 }, clock).capacity).toBe(49);
    expect(new LeakyBucket({ rps: 5, burst: 250 }, clock).capacity).toBe(247);
    expect(new LeakyBucket({ rps: 20, burst: 40 }, clock).capacity).toBe(30);
    expect(new LeakyBucket({ rps: 20, burst: 10 }, clock).capacity).toBe(5);
    expect(new LeakyBucket({ rps: 100, burst: 4 }, clock).capacity).toBe(2);
    expect(new LeakyBucket({ rps: 1, burst: 1 }, clock).capacity).toBe(1);
  });

  it('lets a burst through at once, then one request per 1/rps, in arrival order', async () => {
    const bucket = new LeakyBucket({ rps: 10, burst: 8 }, clock);
    expect(bucket.capacity).toBe(4);
    const through = acquireMany(bucket, 8);
    await jest.advanceTimersByTimeAsync(0);
    expect(through).toEqual([0, 1, 2, 3]);
    await jest.advanceTimersByTimeAsync(99);
    expect(through).toHaveLength(4);
    await jest.advanceTimersByTimeAsync(1);
    expect(through).toEqual([0, 1, 2, 3, 4]);
    await jest.advanceTimersByTimeAsync(300);
    expect(through).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(bucket.waiting).toBe(0);
  });

  it('drains while idle: after a pause the burst is available again', async () => {
    const bucket = new LeakyBucket({ rps: 10, burst: 8 }, clock);
    acquireMany(bucket, 4);
    await jest.advanceTimersByTimeAsync(400);
    const through = acquireMany(bucket, 4);
    await jest.advanceTimersByTimeAsync(0);
    expect(through).toHaveLength(4);
  });

  it('after QUERY_LIMIT_EXCEEDED takes itself as full and halves its rate, once per burst of refusals', async () => {
    const bucket = new LeakyBucket({ rps: 10, burst: 8 }, clock);
    bucket.penalize();
    bucket.penalize();
    expect(bucket.currentRate).toBe(5);
    const through = acquireMany(bucket, 2);
    await jest.advanceTimersByTimeAsync(199);
    expect(through).toEqual([]);
    await jest.advanceTimersByTimeAsync(1);
    expect(through).toEqual([0]);
    await jest.advanceTimersByTimeAsync(1000);
    bucket.penalize();
    expect(bucket.currentRate).toBe(2.5);
  });

  it('never slows below a tenth of the configured rate, and creeps back up with successes', async () => {
    const bucket = new LeakyBucket({ rps: 10, burst: 8 }, clock);
    for (let index = 0; index < 10; index++) {
      bucket.penalize();
      await jest.advanceTimersByTimeAsync(1000);
    }
    expect(bucket.currentRate).toBe(1);
    for (let index = 0; index < 100; index++) bucket.recordSuccess();
    expect(bucket.currentRate).toBe(10);
  });

  it('takes a new per-portal limit at once', async () => {
    const bucket = new LeakyBucket({ rps: 1, burst: 2 }, clock);
    const through = acquireMany(bucket, 3);
    await jest.advanceTimersByTimeAsync(0);
    expect(through).toEqual([0]);
    bucket.configure({ rps: 10, burst: 20 });
    await jest.advanceTimersByTimeAsync(0);
    expect(through).toEqual([0, 1, 2]);
  });

  it('drops a waiter whose signal aborts, and serves the others', async () => {
    const bucket = new LeakyBucket({ rps: 10, burst: 2 }, clock);
    await bucket.acquire();
    const controller = new AbortController();
    const aborted = bucket.acquire(controller.signal);
    const next = bucket.acquire();
    controller.abort(new Error('stopping'));
    await expect(aborted).rejects.toThrow('stopping');
    await jest.advanceTimersByTimeAsync(100);
    await expect(next).resolves.toBeUndefined();
    await expect(bucket.acquire(controller.signal)).rejects.toThrow('stopping');
  });
});

describe('LeakyBucket.idle', () => {
  beforeEach(() => jest.useFakeTimers({ now: 1_000_000 }));
  afterEach(() => jest.useRealTimers());

  it('is idle only once leaked empty, with nobody waiting and no penalty left', async () => {
    const bucket = new LeakyBucket({ rps: 10, burst: 8 }, clock);
    expect(bucket.idle).toBe(true);
    acquireMany(bucket, 6);
    await jest.advanceTimersByTimeAsync(0);
    expect(bucket.idle).toBe(false); // two wait
    await jest.advanceTimersByTimeAsync(200);
    expect(bucket.waiting).toBe(0);
    expect(bucket.idle).toBe(false); // four still in the bucket
    await jest.advanceTimersByTimeAsync(400);
    expect(bucket.idle).toBe(true);

    bucket.penalize();
    await jest.advanceTimersByTimeAsync(60_000);
    expect(bucket.idle).toBe(false); // empty, but still at the lowered rate
    while (bucket.currentRate < 10) bucket.recordSuccess();
    expect(bucket.idle).toBe(true);
  });
});
