import { Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import type { Histogram } from 'prom-client';
import { LruMap } from '../common/lru-map';
import { AppConfig } from '../config/app-config';
import { AppLogger } from '../logging/app-logger';
import { MetricsRegistry } from '../metrics/metrics.registry';
import type { RestTime } from './bitrix24.types';

/**
 * Bitrix24 blocks a method once its summed execution time in a 10-minute window passes the
 * portal's limit (BITRIX24_OPERATING_LIMIT_SECONDS; 480 s is the documented cloud figure,
 * docs/bitrix24/operating-time.md). We warn from this share of it on.
 */
const WARNING_SHARE = 0.8;
/** How long a method stays parked when Bitrix24 gave no operating_reset_at: one window slot. */
const DEFAULT_PARK_MS = 60_000;
/**
 * (portal, method) pairs remembered; the least recently used is forgotten beyond it. Ten thousand
 * portals drain with three methods (event.offline.get, event.offline.clear, batch) and call a few more.
 */
export const OPERATING_TIME_KEYS = 100_000;

export interface OperatingUsage {
  /** `time.operating`: seconds the method ran within the current window. */
  readonly operatingSeconds: number;
  /**
   * When the window lets go of its oldest minute (`time.operating_reset_at`), in ms of our own
   * clock, or undefined when Bitrix24 did not send it. The wait is taken from the answer itself
   * (`operating_reset_at` minus its `time.finish`, both Bitrix24's clock), so a skew between
   * Bitrix24's clock and ours does not move it.
   */
  readonly resetAtMs: number | undefined;
  /** `time.operating_reset_at` as sent: unix seconds of Bitrix24's own clock. */
  readonly resetAt: number | undefined;
  /** When the answer that reported it arrived (our clock, ms). */
  readonly observedAtMs: number;
}

/** Our-clock time of the window's reset, from one answer's `time` block. */
function resetAtOf(time: RestTime, nowMs: number): number | undefined {
  if (typeof time.operating_reset_at !== 'number') return undefined;
  if (typeof time.finish === 'number' && time.finish > 0) {
    return nowMs + Math.max(0, time.operating_reset_at - time.finish) * 1000;
  }
  return time.operating_reset_at * 1000;
}

/** The per-portal, per-method operating-time budget, as Bitrix24 reports it in every answer. */
@Injectable()
export class OperatingTimeTracker {
  private readonly usageByKey = new LruMap<string, OperatingUsage & { warned: boolean }>(
    OPERATING_TIME_KEYS,
  );
  /** Methods Bitrix24 blocked with OPERATION_TIME_LIMIT, until their window lets go. */
  private readonly parkedUntilMs = new LruMap<string, number>(OPERATING_TIME_KEYS);
  private readonly log: Logger;
  private readonly operatingSeconds: Histogram<'method'>;
  /** The portal's limit per method and 10 minutes (BITRIX24_OPERATING_LIMIT_SECONDS). */
  readonly limitSeconds: number;

  constructor(appLogger: AppLogger, metrics: MetricsRegistry, config: AppConfig) {
    this.limitSeconds = config.bitrix24.operatingLimitSeconds;
    this.log = appLogger.child('bitrix24-operating-time');
    this.operatingSeconds = metrics.histogram(
      'bitrix24_method_operating_seconds',
      'time.operating reported by Bitrix24 per answer: seconds a method used of its window budget',
      ['method'],
      [1, 10, 60, 120, 240, 360, 420, 480],
    );
  }

  record(memberId: string, method: string, time: RestTime | undefined, nowMs = Date.now()): void {
    if (typeof time?.operating !== 'number') return;
    const key = `${memberId}\u0000${method}`;
    const warnFrom = this.limitSeconds * WARNING_SHARE;
    const previous = this.usageByKey.get(key);
    const nearLimit = time.operating >= warnFrom;
    if (nearLimit && !previous?.warned) {
      this.log.warn(
        {
          memberId,
          method,
          operatingSeconds: time.operating,
          limitSeconds: this.limitSeconds,
        },
        'method is close to its Bitrix24 operating-time limit',
      );
    }
    this.usageByKey.set(key, {
      operatingSeconds: time.operating,
      resetAtMs: resetAtOf(time, nowMs),
      resetAt: typeof time.operating_reset_at === 'number' ? time.operating_reset_at : undefined,
      observedAtMs: nowMs,
      warned: nearLimit,
    });
    this.operatingSeconds.observe({ method }, time.operating);
  }

  usage(memberId: string, method: string): OperatingUsage | undefined {
    const usage = this.usageByKey.peek(`${memberId}\u0000${method}`);
    return (
      usage && {
        operatingSeconds: usage.operatingSeconds,
        resetAtMs: usage.resetAtMs,
        resetAt: usage.resetAt,
        observedAtMs: usage.observedAtMs,
      }
    );
  }

  /** Pairs remembered now (bounded by OPERATING_TIME_KEYS). */
  get size(): number {
    return this.usageByKey.size;
  }

  /**
   * Bitrix24 answered OPERATION_TIME_LIMIT: the method (only that one, on this portal) is parked
   * until its `operating_reset_at`, or for a minute when Bitrix24 never sent one. Returns how long.
   */
  park(memberId: string, method: string, nowMs = Date.now()): number {
    const key = `${memberId}\u0000${method}`;
    const resetAtMs = this.usageByKey.peek(key)?.resetAtMs;
    const untilMs =
      resetAtMs !== undefined && resetAtMs > nowMs ? resetAtMs : nowMs + DEFAULT_PARK_MS;
    this.parkedUntilMs.set(key, untilMs);
    this.log.warn(
      { memberId, method, parkedSeconds: Math.ceil((untilMs - nowMs) / 1000) },
      'method blocked by its Bitrix24 operating-time limit: parked until the window resets',
    );
    return untilMs - nowMs;
  }

  /** How much longer the method is parked; 0 when it may be called. */
  parkedMs(memberId: string, method: string, nowMs = Date.now()): number {
    const key = `${memberId}\u0000${method}`;
    const untilMs = this.parkedUntilMs.peek(key);
    if (untilMs === undefined) return 0;
    if (untilMs <= nowMs) {
      this.parkedUntilMs.delete(key);
      return 0;
    }
    return untilMs - nowMs;
  }

  /** How long until the method's window lets go of its oldest minute; 0 when unknown or past. */
  msUntilReset(memberId: string, method: string, nowMs = Date.now()): number {
    const resetAtMs = this.usageByKey.peek(`${memberId}\u0000${method}`)?.resetAtMs;
    return resetAtMs === undefined ? 0 : Math.max(0, resetAtMs - nowMs);
  }
}
