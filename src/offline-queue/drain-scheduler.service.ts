import { Injectable, OnModuleDestroy } from '@nestjs/common';
import type { Logger } from 'pino';
import { AppConfig } from '../config/app-config';
import { AppLogger } from '../logging/app-logger';
import { MetricsRegistry } from '../metrics/metrics.registry';
import type { DrainReport } from './drain-report';
import { DrainService } from './drain.service';
import { DrainStoppingError } from './offline-queue.errors';

/** Empty follow-ups stretch the spacing to at most 2^3 = 8 times its base. */
const MAX_BACKOFF_DOUBLINGS = 3;

interface PortalSlot {
  /**
   * cooling: a follow-up pass waits until the follow-up spacing since the last start is over.
   * resting: nothing is pending, but a pass started less than the spacing ago; a request now
   * becomes a follow-up at the end of the spacing. The slot goes once the spacing is over.
   */
  state: 'queued' | 'running' | 'cooling' | 'resting';
  startedAt: number;
  /** Follow-up passes in a row that found nothing: each one doubles the next spacing. */
  emptyFollowUps: number;
  /** The cooling or resting timer. */
  timer?: NodeJS.Timeout;
  /** A request arrived while the drain ran: one more pass follows (however many arrived). */
  again: boolean;
  /** runNow() callers waiting for the next pass to start and finish. */
  waitingForNext: ((report: DrainReport) => void)[];
  /** runNow() callers served by the pass now running. */
  servedByCurrent: ((report: DrainReport) => void)[];
}

/** A portal's slot as it enters the queue for the first time (no pass yet). */
function newSlot(): PortalSlot {
  return {
    state: 'queued',
    startedAt: 0,
    emptyFollowUps: 0,
    again: false,
    waitingForNext: [],
    servedByCurrent: [],
  };
}

/**
 * In-process drain triggers: requests for a portal coalesce (at most one pass running and one
 * more to follow), and drains of different portals run with bounded concurrency
 * (DRAIN_CONCURRENCY). request() is what webhooks call: it returns at once, costs no I/O, and
 * never calls Bitrix24 in the caller's stack. A pass starts no sooner than
 * max(1, BITRIX24_OFFLINE_MIN_TIMEOUT) seconds after the previous pass of the portal started,
 * whether the request came during that pass or after it: Bitrix24 itself notifies no more often
 * than that, so a flood of notifications cannot turn into a pass per notification. A request
 * after a quiet spell longer than the spacing starts a pass at once. Across replicas the drain
 * lease decides who drains.
 */
@Injectable()
export class DrainScheduler implements OnModuleDestroy {
  private readonly log: Logger;
  private readonly slots = new Map<string, PortalSlot>();
  private readonly queue: string[] = [];
  private runningCount = 0;
  private pumpScheduled = false;
  private stopping = false;
  private readonly followUpSpacingMs: number;

  constructor(
    private readonly drainService: DrainService,
    private readonly config: AppConfig,
    metrics: MetricsRegistry,
    appLogger: AppLogger,
  ) {
    this.log = appLogger.child('offline-queue');
    this.followUpSpacingMs = Math.max(1, config.bitrix24.offlineMinTimeout) * 1000;
    const running = (): number => this.runningCount;
    const queued = (): number => this.queue.length;
    metrics.gauge(
      'offline_queue_drains_running',
      'Drain passes running in this process',
      [],
      function () {
        this.set(running());
      },
    );
    metrics.gauge(
      'offline_queue_drains_queued',
      'Portals waiting for a drain slot in this process',
      [],
      function () {
        this.set(queued());
      },
    );
  }

  /** Asks for a drain of the portal soon. Coalesces with a queued or running drain. */
  request(memberId: string): void {
    if (this.stopping) return;
    const slot = this.slots.get(memberId);
    if (slot) {
      if (slot.state === 'running') slot.again = true;
      if (slot.state === 'resting') {
        clearTimeout(slot.timer);
        this.followUp(memberId, slot);
        this.schedulePump();
      }
      return;
    }
    this.slots.set(memberId, newSlot());
    this.queue.push(memberId);
    this.schedulePump();
  }

  /**
   * Drains the portal now (ahead of queued portals) and resolves with the report of a pass that
   * started after this call; if a pass is running, that means the one that follows it.
   */
  runNow(memberId: string): Promise<DrainReport> {
    if (this.stopping) return Promise.reject(new DrainStoppingError());
    return new Promise((resolve) => {
      let slot = this.slots.get(memberId);
      if (!slot) {
        slot = newSlot();
        this.slots.set(memberId, slot);
      } else if (slot.state === 'queued') {
        this.queue.splice(this.queue.indexOf(memberId), 1);
      } else if (slot.state === 'cooling' || slot.state === 'resting') {
        clearTimeout(slot.timer);
        slot.state = 'queued';
      }
      slot.waitingForNext.push(resolve);
      if (slot.state === 'queued') this.queue.unshift(memberId);
      else slot.again = true;
      this.schedulePump();
    });
  }

  /** Whether a drain of the portal is queued, running or waiting for its spacing in this process. */
  isScheduled(memberId: string): boolean {
    const slot = this.slots.get(memberId);
    return slot !== undefined && slot.state !== 'resting';
  }

  onModuleDestroy(): void {
    this.stopping = true;
    const abandoned = this.queue.splice(0);
    for (const [memberId, slot] of this.slots) {
      if (slot.state === 'resting') {
        clearTimeout(slot.timer);
        this.slots.delete(memberId);
      }
      if (slot.state !== 'cooling') continue;
      clearTimeout(slot.timer);
      abandoned.push(memberId);
    }
    for (const memberId of abandoned) {
      const slot = this.slots.get(memberId);
      this.slots.delete(memberId);
      for (const resolve of slot?.waitingForNext ?? []) resolve(this.stoppedReport(memberId));
    }
    if (abandoned.length > 0) {
      this.log.info(
        { portals: abandoned.length },
        'queued drains dropped at shutdown; the poller picks them up later',
      );
    }
  }

  private schedulePump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    // Never in the caller's stack: a webhook request returns before any drain work starts.
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    while (
      !this.stopping &&
      this.runningCount < this.config.drain.concurrency &&
      this.queue.length > 0
    ) {
      this.start(this.queue.shift()!);
    }
  }

  private start(memberId: string): void {
    const slot = this.slots.get(memberId)!;
    const followingUp = slot.startedAt !== 0;
    slot.state = 'running';
    slot.startedAt = Date.now();
    slot.again = false;
    slot.servedByCurrent = slot.waitingForNext;
    slot.waitingForNext = [];
    this.runningCount += 1;
    // A pass someone waits on (runNow) runs to the end; others give their slot up after
    // DRAIN_PASS_SLICE_SECONDS while portals wait in the queue.
    const othersWaiting =
      slot.servedByCurrent.length === 0 ? () => this.queue.length > 0 : undefined;
    void this.drainService
      .drainPortal(memberId, { othersWaiting })
      .catch((error: unknown): DrainReport => {
        this.log.error({ err: error, memberId }, 'drain crashed');
        return { ...this.stoppedReport(memberId), error: String(error) };
      })
      .then((report) => {
        const retryInMs = report.retryInMs ?? null;
        this.runningCount -= 1;
        slot.emptyFollowUps =
          followingUp && report.events === 0 && report.recoveredBatches === 0
            ? slot.emptyFollowUps + 1
            : 0;
        for (const resolve of slot.servedByCurrent) resolve(report);
        slot.servedByCurrent = [];
        if (!this.stopping && retryInMs !== null && slot.waitingForNext.length === 0) {
          this.retry(memberId, slot, retryInMs);
        } else if (!this.stopping && slot.waitingForNext.length > 0) {
          slot.state = 'queued';
          this.queue.unshift(memberId); // a runNow() waiter goes first
        } else if (!this.stopping && report.yielded) {
          slot.state = 'queued';
          this.queue.push(memberId); // rows are left: behind the portals it made room for
        } else if (!this.stopping && slot.again) {
          this.followUp(memberId, slot);
        } else if (!this.stopping) {
          this.rest(memberId, slot);
        } else {
          this.slots.delete(memberId);
          for (const resolve of slot.waitingForNext) resolve(this.stoppedReport(memberId));
        }
        this.pump();
      });
  }

  /** The retry of a failed pass: it waits outside the concurrency bound, so others go on. */
  private retry(memberId: string, slot: PortalSlot, wait: number): void {
    slot.state = 'cooling';
    slot.again = false;
    slot.timer = setTimeout(() => {
      slot.state = 'queued';
      this.queue.push(memberId);
      this.pump();
    }, wait);
    slot.timer.unref();
  }

  /**
   * Queues the coalesced follow-up pass once the spacing since the last start is over. When
   * follow-ups keep finding nothing (notifications with no new rows behind them), the spacing
   * doubles, up to 8×; a pass that finds events resets it. The pass is delayed, never dropped.
   */
  private followUp(memberId: string, slot: PortalSlot): void {
    const wait = this.spacingLeft(slot);
    if (wait <= 0) {
      slot.state = 'queued';
      this.queue.push(memberId);
      return;
    }
    slot.state = 'cooling';
    slot.timer = setTimeout(() => {
      slot.state = 'queued';
      this.queue.push(memberId);
      this.pump();
    }, wait);
    slot.timer.unref();
  }

  /**
   * Nothing more was asked for during the pass: the slot stays until the spacing is over, so that
   * a request in the meantime waits for it too (and counts as a follow-up), then it goes.
   */
  private rest(memberId: string, slot: PortalSlot): void {
    const wait = this.spacingLeft(slot);
    if (wait <= 0) {
      this.slots.delete(memberId);
      return;
    }
    slot.state = 'resting';
    slot.timer = setTimeout(() => {
      if (this.slots.get(memberId) === slot && slot.state === 'resting') {
        this.slots.delete(memberId);
      }
    }, wait);
    slot.timer.unref();
  }

  /** Milliseconds until the next pass may start: the spacing, doubled per empty follow-up. */
  private spacingLeft(slot: PortalSlot): number {
    const spacing =
      this.followUpSpacingMs * 2 ** Math.min(slot.emptyFollowUps, MAX_BACKOFF_DOUBLINGS);
    return slot.startedAt + spacing - Date.now();
  }

  private stoppedReport(memberId: string): DrainReport {
    return {
      memberId,
      outcome: 'failed',
      events: 0,
      pages: 0,
      largestPage: 0,
      recoveredBatches: 0,
      deliveryMode: 'exactly-once',
      durationMs: 0,
      error: new DrainStoppingError().message,
    };
  }
}
