import { Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import type { Histogram } from 'prom-client';
import { AppLogger } from '../logging/app-logger';
import { MetricsRegistry } from '../metrics/metrics.registry';
import type { RestTime } from './bitrix24.types';

/**
 * Bitrix24 blocks a method once its summed execution time in a 10-minute window passes the
 * portal's limit (contract §8; 480 s is the documented cloud example, the real value is portal
 * configuration). We warn from this share of it on.
 */
export const OPERATING_LIMIT_SECONDS = 480;
const WARNING_SHARE = 0.8;
/** How long a method stays parked when Bitrix24 gave no operating_reset_at: one window slot. */
const DEFAULT_PARK_MS = 60_000;

export interface OperatingUsage {
  /** `time.operating`: seconds the method ran within the current window. */
  readonly operatingSeconds: number;
  /** `time.operating_reset_at` in ms since the epoch, when Bitrix24 sent it. */
  readonly resetAtMs: number | undefined;
}

/** The per-portal, per-method operating-time budget, as Bitrix24 reports it in every answer. */
@Injectable()
export class OperatingTimeTracker {
  private readonly usageByKey = new Map<string, OperatingUsage & { warned: boolean }>();
  /** Methods Bitrix24 blocked with OPERATION_TIME_LIMIT, until their window lets go. */
  private readonly parkedUntilMs = new Map<string, number>();
  private readonly log: Logger;
  private readonly operatingSeconds: Histogram<'method'>;

  constructor(appLogger: AppLogger, metrics: MetricsRegistry) {
    this.log = appLogger.child('bitrix24-operating-time');
    this.operatingSeconds = metrics.histogram(
      'bitrix24_method_operating_seconds',
      'time.operating reported by Bitrix24 per answer: seconds a method used of its window budget',
      ['method'],
      [1, 10, 60, 120, 240, 360, 420, 480],
    );
  }

  record(memberId: string, method: string, time: RestTime | undefined): void {
    if (typeof time?.operating !== 'number') return;
    const key = `${memberId}\u0000${method}`;
    const warnFrom = OPERATING_LIMIT_SECONDS * WARNING_SHARE;
    const previous = this.usageByKey.get(key);
    const nearLimit = time.operating >= warnFrom;
    if (nearLimit && !previous?.warned) {
      this.log.warn(
        {
          memberId,
          method,
          operatingSeconds: time.operating,
          limitSeconds: OPERATING_LIMIT_SECONDS,
        },
        'method is close to its Bitrix24 operating-time limit',
      );
    }
    this.usageByKey.set(key, {
      operatingSeconds: time.operating,
      resetAtMs:
        typeof time.operating_reset_at === 'number' ? time.operating_reset_at * 1000 : undefined,
      warned: nearLimit,
    });
    this.operatingSeconds.observe({ method }, time.operating);
  }

  usage(memberId: string, method: string): OperatingUsage | undefined {
    const usage = this.usageByKey.get(`${memberId}\u0000${method}`);
    return usage && { operatingSeconds: usage.operatingSeconds, resetAtMs: usage.resetAtMs };
  }

  /**
   * Bitrix24 answered OPERATION_TIME_LIMIT: the method (only that one, on this portal) is parked
   * until its `operating_reset_at`, or for a minute when Bitrix24 never sent one. Returns how long.
   */
  park(memberId: string, method: string, nowMs = Date.now()): number {
    const key = `${memberId}\u0000${method}`;
    const resetAtMs = this.usageByKey.get(key)?.resetAtMs;
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
    const untilMs = this.parkedUntilMs.get(key);
    if (untilMs === undefined) return 0;
    if (untilMs <= nowMs) {
      this.parkedUntilMs.delete(key);
      return 0;
    }
    return untilMs - nowMs;
  }

  /** How long until the method's window lets go of its oldest minute; 0 when unknown or past. */
  msUntilReset(memberId: string, method: string, nowMs = Date.now()): number {
    const resetAtMs = this.usageByKey.get(`${memberId}\u0000${method}`)?.resetAtMs;
    return resetAtMs === undefined ? 0 : Math.max(0, resetAtMs - nowMs);
  }
}
