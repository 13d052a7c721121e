import { Injectable } from '@nestjs/common';
import { AppConfig } from '../config/app-config';
import { LruMap } from '../common/lru-map';

/** Portals whose answer times are remembered; the least recently used is forgotten beyond it. */
export const OFFLINE_TIMEOUT_PORTALS = 10_000;
/** A portal with no answer yet waits this long at most (or the request timeout, if shorter). */
const FIRST_CALL_TIMEOUT_MS = 10_000;
/** RFC 6298's gains: the smoothed time follows answers by 1/8, its deviation by 1/4. */
const SMOOTHING = 1 / 8;
const DEVIATION_GAIN = 1 / 4;
const DEVIATIONS_OF_MARGIN = 4;

interface PortalAnswerTimes {
  smoothedMs: number;
  deviationMs: number;
  /** Doublings after timeouts since the last answer. */
  backoff: number;
}

/**
 * How long an offline-queue call (event.offline.get/clear/list) waits for its answer: a lost answer
 * to one of them costs the drain the whole wait and, for a get, an adoption of what it reserved, so
 * waiting the generic request timeout (30 s by default) for an answer that normally takes well under
 * a second makes a flaky portal crawl. The wait follows the portal's own answer times the way TCP's
 * retransmission timer does (RFC 6298): smoothed time plus four deviations, never below the floor
 * (BITRIX24_OFFLINE_REQUEST_TIMEOUT_MIN_MS) nor above BITRIX24_REQUEST_TIMEOUT_MS, doubled after
 * each timeout until the next answer. A timeout that was too short costs a repeat, never an event:
 * the drain treats a lost answer as one whose outcome is unknown. Answers that come only after
 * their call timed out are never measured, so a slow portal's doubling settles on its real time.
 *
 * A call expected to run long on Bitrix24's side (a big backlog page: the drain predicts its run
 * time from the rows it asks for) waits that much longer, and only the time beyond what was
 * expected is learned: one big page neither times out nor stretches the wait of the small calls.
 */
@Injectable()
export class OfflineCallTimeout {
  private readonly byPortal = new LruMap<string, PortalAnswerTimes>(OFFLINE_TIMEOUT_PORTALS);
  private readonly floorMs: number;
  private readonly ceilingMs: number;

  constructor(config: AppConfig) {
    this.ceilingMs = config.bitrix24.requestTimeoutMs;
    this.floorMs = Math.min(config.bitrix24.offlineRequestTimeoutMinMs, this.ceilingMs);
  }

  /**
   * The wait for the portal's next offline-queue call; `expectedRunMs` is how long the call itself
   * is expected to run on Bitrix24's side, on top of the portal's usual answer time.
   */
  timeoutMs(memberId: string, expectedRunMs = 0): number {
    const extraMs = Math.max(0, expectedRunMs);
    const times = this.byPortal.get(memberId);
    if (times === undefined) {
      const first = Math.max(this.floorMs, Math.min(FIRST_CALL_TIMEOUT_MS, this.ceilingMs));
      return Math.min(this.ceilingMs, Math.round(first + extraMs));
    }
    const base = Math.max(
      this.floorMs,
      times.smoothedMs + DEVIATIONS_OF_MARGIN * times.deviationMs,
    );
    return Math.min(this.ceilingMs, Math.round(base * 2 ** times.backoff + extraMs));
  }

  /** An answer came after `elapsedMs`, of which `expectedRunMs` were expected run time. */
  answered(memberId: string, elapsedMs: number, expectedRunMs = 0): void {
    elapsedMs = Math.max(0, elapsedMs - Math.max(0, expectedRunMs));
    const times = this.byPortal.get(memberId);
    if (times === undefined) {
      this.byPortal.set(memberId, {
        smoothedMs: elapsedMs,
        deviationMs: elapsedMs / 2,
        backoff: 0,
      });
      return;
    }
    times.deviationMs +=
      DEVIATION_GAIN * (Math.abs(times.smoothedMs - elapsedMs) - times.deviationMs);
    times.smoothedMs += SMOOTHING * (elapsedMs - times.smoothedMs);
    times.backoff = 0;
    this.byPortal.set(memberId, times);
  }

  /** A call got no answer within its wait: the next one waits twice as long (up to the ceiling). */
  timedOut(memberId: string): void {
    const current = this.timeoutMs(memberId);
    // A portal never answered starts from estimates whose wait is the first-call wait.
    const times = this.byPortal.get(memberId) ?? {
      smoothedMs: current / 2,
      deviationMs: current / 8,
      backoff: 0,
    };
    if (current < this.ceilingMs) times.backoff += 1;
    this.byPortal.set(memberId, times);
  }

  /** Portals remembered now (bounded by OFFLINE_TIMEOUT_PORTALS). */
  get size(): number {
    return this.byPortal.size;
  }
}
