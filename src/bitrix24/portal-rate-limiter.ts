import { Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import { DataSource } from 'typeorm';
import { AppConfig } from '../config/app-config';
import { AppLogger } from '../logging/app-logger';
import { LeakyBucket, type PortalBucket, type RateLimit } from './leaky-bucket';
import { SharedLeakyBucket } from './shared-leaky-bucket';

/**
 * One leaky bucket per portal for every caller (drain, handlers, admin actions). With
 * BITRIX24_RATE_LIMIT_STORE=postgres (the default) its state is a row in `portal_rate_buckets`,
 * so all replicas together stay inside the portal's limit; `memory` keeps it in this process.
 */
@Injectable()
export class PortalRateLimiter {
  private readonly buckets = new Map<string, LeakyBucket>();
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
      bucket = new LeakyBucket(limit);
      this.buckets.set(memberId, bucket);
    } else {
      bucket.configure(limit);
    }
    return bucket;
  }
}
