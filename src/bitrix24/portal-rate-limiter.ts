import { Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import { DataSource } from 'typeorm';
import { AppConfig } from '../config/app-config';
import { AppLogger } from '../logging/app-logger';
import { LeakyBucket, type PortalBucket, type RateLimit } from './leaky-bucket';
import { SharedLeakyBucket } from './shared-leaky-bucket';

const SWEEP_FROM_BUCKETS = 1_000;

/**
 * One leaky bucket per portal for every caller (drain, handlers, admin actions). With
 * BITRIX24_RATE_LIMIT_STORE=postgres (the default) its state is a row in `portal_rate_buckets`,
 * so all replicas together stay inside the portal's limit; `memory` keeps it in this process.
 */
@Injectable()
export class PortalRateLimiter {
  private readonly buckets = new Map<string, LeakyBucket>();
  /** The memory store forgets idle buckets when it reaches this many (then twice what is left). */
  private sweepAt = SWEEP_FROM_BUCKETS;
  private readonly log: Logger;

  constructor(
    private readonly config: AppConfig,
    private readonly dataSource: DataSource,
    appLogger: AppLogger,
  ) {
    this.log = appLogger.child('rate-limit');
  }

  /** The portal's bucket, brought up to date with its (possibly overridden) limit. */
  bucketFor(memberId: string, limit: RateLimit): PortalBucket {
    if (this.config.bitrix24.rateLimitStore === 'postgres') {
      return new SharedLeakyBucket(memberId, limit, this.dataSource, this.log);
    }
    let bucket = this.buckets.get(memberId);
    if (!bucket) {
      if (this.buckets.size >= this.sweepAt) this.forgetIdleBuckets();
      bucket = new LeakyBucket(limit);
      this.buckets.set(memberId, bucket);
    } else {
      bucket.configure(limit);
    }
    return bucket;
  }

  /** Buckets held now by the memory store. */
  get size(): number {
    return this.buckets.size;
  }

  /**
   * An idle bucket is as good as a new one, so forgetting it changes no decision; only portals
   * called within the last few seconds stay. Amortised: a sweep runs after the map has doubled.
   */
  private forgetIdleBuckets(): void {
    for (const [memberId, bucket] of this.buckets) {
      if (bucket.idle) this.buckets.delete(memberId);
    }
    this.sweepAt = Math.max(SWEEP_FROM_BUCKETS, this.buckets.size * 2);
  }
}
