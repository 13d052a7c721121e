import { ManualClock } from '../clock';
import { LeakyBucket } from './leaky-bucket';

describe('LeakyBucket', () => {
  it('lets a burst through, refuses beyond it, and drains at the rate', () => {
    const clock = new ManualClock();
    const bucket = new LeakyBucket(clock);
    const limit = { rps: 2, burst: 50 };

    const admitted = Array.from({ length: 60 }, () => bucket.tryAdd(limit)).filter(Boolean);
    expect(admitted).toHaveLength(50);

    clock.advance(1000);
    expect([bucket.tryAdd(limit), bucket.tryAdd(limit), bucket.tryAdd(limit)]).toEqual([
      true,
      true,
      false,
    ]);
  });

  it('applies a tightened limit to the level already reached', () => {
    const clock = new ManualClock();
    const bucket = new LeakyBucket(clock);
    for (let request = 0; request < 10; request++) bucket.tryAdd({ rps: 2, burst: 50 });

    expect(bucket.tryAdd({ rps: 0, burst: 5 })).toBe(false);
  });
});
