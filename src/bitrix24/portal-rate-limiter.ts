import { Injectable } from '@nestjs/common';
import { LeakyBucket, RateLimit } from './leaky-bucket';

/** One leaky bucket per portal, shared by every caller in this process. */
@Injectable()
export class PortalRateLimiter {
  private readonly buckets = new Map<string, LeakyBucket>();

  /** The portal's bucket, brought up to date with its (possibly overridden) limit. */
  bucketFor(memberId: string, limit: RateLimit): LeakyBucket {
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
