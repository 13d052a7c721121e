import type { Clock } from '../clock';

export interface RateLimit {
  /** Y: how many requests per second drain out of the bucket. */
  readonly rps: number;
  /** X: how full the bucket may get before requests are refused. */
  readonly burst: number;
}

/** The plan limits of contract §8: Enterprise 5/250, every other plan 2/50. */
export const STANDARD_PLAN_LIMIT: RateLimit = { rps: 2, burst: 50 };
export const ENTERPRISE_PLAN_LIMIT: RateLimit = { rps: 5, burst: 250 };

/**
 * Bitrix24's per-portal leaky bucket: each request adds 1, the level drains at `rps`, and a request
 * that would lift it above `burst` is refused (and not counted). The limit is passed per request so
 * a fault can tighten it behind the client's back.
 */
export class LeakyBucket {
  private level = 0;
  private updatedAtMs: number;

  constructor(private readonly clock: Clock) {
    this.updatedAtMs = clock.now();
  }

  tryAdd(limit: RateLimit): boolean {
    const now = this.clock.now();
    const drained = ((now - this.updatedAtMs) / 1000) * limit.rps;
    this.level = Math.max(0, this.level - drained);
    this.updatedAtMs = now;
    if (this.level + 1 > limit.burst) return false;
    this.level += 1;
    return true;
  }
}
