import type { DataSource } from 'typeorm';
import type { AppConfig } from '../config/app-config';
import type { AppLogger } from '../logging/app-logger';
import { LeakyBucket } from './leaky-bucket';
import { PortalRateLimiter } from './portal-rate-limiter';

const LIMIT = { rps: 2, burst: 50 };

function memoryLimiter(): PortalRateLimiter {
  const config = { bitrix24: { rateLimitStore: 'memory' } } as unknown as AppConfig;
  const logger = { child: () => ({}) } as unknown as AppLogger;
  return new PortalRateLimiter(config, {} as DataSource, logger);
}

describe('PortalRateLimiter (memory store)', () => {
  beforeEach(() => jest.useFakeTimers({ now: 1_000_000 }));
  afterEach(() => jest.useRealTimers());

  it('keeps one bucket per portal, so every caller of a portal shares it', () => {
    const limiter = memoryLimiter();
    expect(limiter.bucketFor('a', LIMIT)).toBe(limiter.bucketFor('a', LIMIT));
    expect(limiter.bucketFor('a', LIMIT)).not.toBe(limiter.bucketFor('b', LIMIT));
  });

  it('forgets idle buckets as portals come and go, and keeps busy ones', async () => {
    const limiter = memoryLimiter();
    const busy = limiter.bucketFor('busy', LIMIT) as LeakyBucket;
    for (let portal = 0; portal < 20_000; portal += 1) {
      await limiter.bucketFor(`portal-${portal}`, LIMIT).acquire();
      if (portal % 20 === 0) void busy.acquire(); // faster than it leaks: never idle
      // Every portal calls once and goes quiet; one request leaks out of a bucket in 0.5 s.
      if (portal % 100 === 0) await jest.advanceTimersByTimeAsync(1_000);
    }
    expect(limiter.size).toBeLessThan(2_500);
    // The busy portal's bucket is full: had it been forgotten, a new one would let 49 through.
    expect(limiter.bucketFor('busy', LIMIT)).toBe(busy);
    expect(busy.idle).toBe(false);
  });
});
