export interface RateLimit {
  /** Requests per second that drain out of the bucket. */
  readonly rps: number;
  /** How full the bucket may get: the number of requests that may go at once. */
  readonly burst: number;
}

/** Bitrix24's limits by plan (limits.md): Enterprise 5/s with 250 before blocking, others 2/50. */
export const ENTERPRISE_RATE_LIMIT: RateLimit = { rps: 5, burst: 250 };

/** Milliseconds from a monotonic source. */
export interface MonotonicClock {
  now(): number;
}

const PERFORMANCE_CLOCK: MonotonicClock = { now: () => performance.now() };

/**
 * Requests that reach Bitrix24 closer together than we sent them (network jitter, a request held
 * up on a new connection or a loaded host) must still fit: keep this many seconds' worth of
 * requests free in the bucket. At the plans' own limits (2/50, 5/250) that is 1 and 3 requests.
 */
const JITTER_ALLOWANCE_SECONDS = 0.5;
/** After QUERY_LIMIT_EXCEEDED the rate halves, but never below this share of the configured rate. */
const MIN_RATE_SHARE = 0.1;
/** Each success gives back this share of the configured rate, until the configured rate is reached. */
const RECOVERY_SHARE_PER_SUCCESS = 0.02;
/** Refusals arriving together (the requests already in flight) count as one signal. */
const PENALTY_QUIET_MS = 1000;

/**
 * Requests that may go at once into a bucket of this limit: the burst minus a safety margin for
 * jitter (JITTER_ALLOWANCE_SECONDS of the rate, at least 1, at most half the burst).
 */
export function bucketCapacity(limit: RateLimit): number {
  const margin = Math.min(
    Math.max(1, Math.ceil(limit.rps * JITTER_ALLOWANCE_SECONDS)),
    Math.floor(limit.burst / 2),
  );
  return Math.max(1, limit.burst - margin);
}

/** What a caller needs of a portal's bucket, wherever its state lives. */
export interface PortalBucket {
  /** Resolves when this request may go (and counts it); rejects if `signal` aborts. */
  acquire(signal?: AbortSignal): Promise<void>;
  /** Bitrix24 answered QUERY_LIMIT_EXCEEDED: its bucket is full. */
  penalize(): void;
  /** A request went through. */
  recordSuccess(): void;
}

interface Waiter {
  resolve(): void;
  reject(reason: unknown): void;
  detach(): void;
}

/**
 * Bitrix24's leaky bucket, mirrored on our side so we do not provoke QUERY_LIMIT_EXCEEDED: every
 * request adds 1, the level drains at `rps`, and a request goes only when it fits. Waiters are
 * served in arrival order by one timer, so all callers of a portal share one budget.
 *
 * When Bitrix24 refuses anyway (its limit is tighter than ours, or another client spends the same
 * budget) the bucket is taken as full and the rate halves; successes raise it again step by step.
 */
export class LeakyBucket implements PortalBucket {
  private limit: RateLimit;
  private rate: number;
  private level = 0;
  private updatedAt: number;
  private lastPenaltyAt = -Infinity;
  private readonly waiters: Waiter[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    limit: RateLimit,
    private readonly clock: MonotonicClock = PERFORMANCE_CLOCK,
  ) {
    this.limit = limit;
    this.rate = limit.rps;
    this.updatedAt = clock.now();
  }

  /** Requests that may go at once: the burst minus a safety margin for jitter. */
  get capacity(): number {
    return bucketCapacity(this.limit);
  }

  /** The drain rate now in force (below the configured rps after refusals). */
  get currentRate(): number {
    return this.rate;
  }

  get waiting(): number {
    return this.waiters.length;
  }

  /** A per-portal override changed: take the new limit and forget what refusals taught. */
  configure(limit: RateLimit): void {
    if (limit.rps === this.limit.rps && limit.burst === this.limit.burst) return;
    this.leak();
    this.limit = limit;
    this.rate = limit.rps;
    this.pump();
  }

  /** Resolves when this request fits into the bucket (and counts it); rejects if `signal` aborts. */
  acquire(signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason as Error);
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        const index = this.waiters.indexOf(waiter);
        if (index >= 0) this.waiters.splice(index, 1);
        reject(signal?.reason as Error);
        this.pump();
      };
      const waiter: Waiter = {
        resolve,
        reject,
        detach: () => signal?.removeEventListener('abort', onAbort),
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
      this.pump();
    });
  }

  /**
   * Leaked empty, nobody waiting, back at the configured rate: the bucket is then no different from
   * a new one, and may be forgotten without letting anyone exceed the limit.
   */
  get idle(): boolean {
    if (this.waiters.length > 0 || this.rate < this.limit.rps) return false;
    this.leak();
    return this.level === 0;
  }

  /** Bitrix24 answered QUERY_LIMIT_EXCEEDED: its bucket is full, and our rate is too high. */
  penalize(): void {
    this.leak();
    this.level = Math.max(this.level, this.capacity);
    const now = this.clock.now();
    if (now - this.lastPenaltyAt >= PENALTY_QUIET_MS) {
      this.rate = Math.max(this.limit.rps * MIN_RATE_SHARE, this.rate / 2);
      this.lastPenaltyAt = now;
    }
    this.pump();
  }

  /** A request went through: creep back towards the configured rate. */
  recordSuccess(): void {
    if (this.rate >= this.limit.rps) return;
    this.leak();
    this.rate = Math.min(this.limit.rps, this.rate + this.limit.rps * RECOVERY_SHARE_PER_SUCCESS);
  }

  private leak(): void {
    const now = this.clock.now();
    this.level = Math.max(0, this.level - ((now - this.updatedAt) / 1000) * this.rate);
    this.updatedAt = now;
  }

  private pump(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    this.leak();
    const capacity = this.capacity;
    while (this.waiters.length > 0 && this.level + 1 <= capacity + 1e-9) {
      this.level += 1;
      const waiter = this.waiters.shift()!;
      waiter.detach();
      waiter.resolve();
    }
    if (this.waiters.length === 0) return;
    const waitMs = ((this.level + 1 - capacity) / this.rate) * 1000;
    this.timer = setTimeout(() => this.pump(), Math.max(1, Math.ceil(waitMs)));
  }
}
