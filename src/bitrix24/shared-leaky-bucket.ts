import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { DataSource } from 'typeorm';
import { bucketCapacity, type PortalBucket, type RateLimit } from './leaky-bucket';

/**
 * One statement per request (GCRA): the row holds the bucket's theoretical arrival time `tat_ms`
 * (Unix ms, Postgres's clock, so every replica reads the same time). A request reserves the next
 * slot, `tat = max(tat, now) + 1000/rps`, and may go once the bucket has room for it again,
 * `tat - capacity * 1000/rps`. Requests are thus served in the order they reserved, across
 * replicas, with at most `capacity` in the bucket at any moment.
 */
const RESERVE_SQL = `
WITH clock AS (SELECT extract(epoch FROM clock_timestamp()) * 1000 AS now_ms)
INSERT INTO portal_rate_buckets AS bucket (member_id, tat_ms)
SELECT $1, clock.now_ms + $2 FROM clock
ON CONFLICT (member_id) DO UPDATE
  SET tat_ms = greatest(bucket.tat_ms, (SELECT now_ms FROM clock)) + $2
RETURNING bucket.tat_ms - $3 - (SELECT now_ms FROM clock) AS wait_ms`;

/** QUERY_LIMIT_EXCEEDED: Bitrix24's bucket is full, so ours is taken as full too. */
const FILL_SQL = `
WITH clock AS (SELECT extract(epoch FROM clock_timestamp()) * 1000 AS now_ms)
INSERT INTO portal_rate_buckets AS bucket (member_id, tat_ms)
SELECT $1, clock.now_ms + $2 FROM clock
ON CONFLICT (member_id) DO UPDATE
  SET tat_ms = greatest(bucket.tat_ms, (SELECT now_ms FROM clock) + $2)`;

/** A portal's leaky bucket whose state is a row in Postgres, shared by every replica and caller. */
export class SharedLeakyBucket implements PortalBucket {
  constructor(
    private readonly memberId: string,
    private readonly limit: RateLimit,
    private readonly dataSource: DataSource,
    private readonly log: Logger,
  ) {}

  async acquire(signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) throw signal.reason as Error;
    const waitMs = await this.reserve();
    if (waitMs <= 0) return;
    try {
      await sleep(Math.ceil(waitMs), undefined, { signal });
    } catch {
      throw signal?.reason as Error;
    }
  }

  /** Takes the next slot; how long (ms) until it may go, 0 or less for at once. */
  async reserve(): Promise<number> {
    const interval = 1000 / this.limit.rps;
    const rows: { wait_ms: number | string }[] = await this.dataSource.query(RESERVE_SQL, [
      this.memberId,
      interval,
      bucketCapacity(this.limit) * interval,
    ]);
    return Number(rows[0]?.wait_ms ?? 0);
  }

  penalize(): void {
    const interval = 1000 / this.limit.rps;
    this.dataSource
      .query(FILL_SQL, [this.memberId, bucketCapacity(this.limit) * interval])
      .catch((error: unknown) => {
        this.log.warn(
          { memberId: this.memberId, err: error },
          'could not mark the shared bucket full',
        );
      });
  }

  recordSuccess(): void {}
}
