import { performance } from 'node:perf_hooks';
import { BeforeApplicationShutdown, Injectable, OnModuleDestroy } from '@nestjs/common';
import type { Logger } from 'pino';
import { DataSource } from 'typeorm';
import { Bitrix24ApiError, PortalNotActiveError } from '../bitrix24/bitrix24-api.error';
import { Bitrix24Client } from '../bitrix24/bitrix24.client';
import type {
  BatchResult,
  OfflineEvent,
  OfflineGetResult,
  RestErrorBody,
  RestTime,
} from '../bitrix24/bitrix24.types';
import { classifyRestError } from '../bitrix24/error-classification';
import { OperatingTimeTracker } from '../bitrix24/operating-time.tracker';
import { OFFLINE_PAGE_ORDER, type PortalRestClient } from '../bitrix24/portal-rest.client';
import { mayHaveRun } from '../bitrix24/rest-call.executor';
import { AppConfig } from '../config/app-config';
import { AppLogger } from '../logging/app-logger';
import type { DeliveryMode, PortalStatus } from '../portals/portal-status';
import { BacklogPaging, type PageAnswer, waitForReset } from './backlog-paging';
import { DrainLease, DrainLeaseService, PreviousDrain } from './drain-lease.service';
import { DrainLedger } from './drain-ledger.service';
import { DrainPausePoint } from './drain-pause-point';
import { retryDelayMs, TROUBLE_AFTER_FAILURES } from './drain-retry';
import type { DrainOutcome, DrainReport } from './drain-report';
import { DrainMetrics } from './drain.metrics';
import {
  DrainDeferredError,
  DrainStoppingError,
  OfflineClearFailedError,
  UnexpectedOfflineAnswerError,
} from './offline-queue.errors';

/** Even after clean passes, event.offline.list is searched for unknown reserved batches this often. */
export const ADOPTION_CHECK_INTERVAL_MS = 5 * 60 * 1000;
/** One pass adopts from at most this many event.offline.list pages (50 rows each); the rest next pass. */
const MAX_ADOPTION_LIST_PAGES = 20;
/** No batch any replica reserves is larger than the largest DRAIN_MAX_PAGE_SIZE. */
const MAX_RESERVED_BATCH = 10_000;
/** The methods a drain's pages are billed to: event.offline.get alone, or the clear-and-get batch. */
const PAGE_METHODS = ['event.offline.get', 'batch'] as const;
const OPERATION_TIME_LIMIT = 'OPERATION_TIME_LIMIT';
/**
 * A get (or a clear-and-get batch) whose answer was lost is settled within the same pass: what it
 * may have reserved or cleared is resumed and adopted at once, and the pass goes on. Past this many
 * in one pass the pass fails and its retry backs off.
 */
const MAX_IN_PASS_RECOVERIES = 10;
/** On shutdown, running drains get this long to reach a safe point; then their leases are released. */
const SHUTDOWN_GRACE_MS = 8000;

interface Pass {
  readonly lease: DrainLease;
  readonly client: PortalRestClient;
  readonly report: DrainReport;
  /** Our clock when the pass began: operating times reported since are this pass's own. */
  readonly startedAtMs: number;
  /** True when the pass should give its slot up after the page it just committed. */
  readonly shouldYield: () => boolean;
}

/** What the caller of a pass (the scheduler) tells it. */
export interface DrainPassOptions {
  /**
   * Whether other portals wait for a drain slot now. A pass that has run DRAIN_PASS_SLICE_SECONDS
   * asks after each page, and yields when they do.
   */
  othersWaiting?: () => boolean;
}

function isWrongLicense(error: unknown): boolean {
  return error instanceof Bitrix24ApiError && error.bitrixCode === 'WRONG_LICENSE';
}

function isOperatingLimit(error: unknown): error is Bitrix24ApiError {
  return error instanceof Bitrix24ApiError && error.bitrixCode === OPERATION_TIME_LIMIT;
}

function batchCommandError(method: string, body: RestErrorBody): Bitrix24ApiError {
  return new Bitrix24ApiError(
    body.error,
    body.error_description ?? '',
    200,
    method,
    classifyRestError(body.error, 200),
  );
}

/**
 * Drains one portal's offline queue exactly once (invariants 1-4 of PRODUCT.md):
 * - one drainer per portal across replicas (a fenced lease in Postgres);
 * - recovery first: committed-but-uncleared batches are resumed and cleared, and reserved batches
 *   we never committed (a crash between Bitrix24's answer and our commit) are adopted;
 * - then page by page: get (clear=0) → commit rows + process_id in one transaction → clear; the
 *   clear of page N and the get of page N+1 travel in one `batch` request; on a backlog pages grow
 *   up to DRAIN_MAX_PAGE_SIZE, steered by the operating time Bitrix24 reports (BacklogPaging), and
 *   the pass ends `deferred` before the portal's operating-time limit is reached;
 * - nothing is cleared that is not committed. Without rest_offline_extended the portal is drained
 *   with clear=1 and marked at-most-once.
 */
@Injectable()
export class DrainService implements OnModuleDestroy, BeforeApplicationShutdown {
  private readonly log: Logger;
  private readonly pageSize: number;
  private readonly maxPageSize: number;
  private readonly passSliceMs: number;
  private readonly retry: { baseMs: number; capMs: number };
  private readonly running = new Map<string, { lease: DrainLease; done: Promise<unknown> }>();
  private stopping = false;
  private stopRequestedAt = 0;

  constructor(
    private readonly dataSource: DataSource,
    private readonly bitrix24: Bitrix24Client,
    private readonly leases: DrainLeaseService,
    private readonly ledger: DrainLedger,
    private readonly pausePoint: DrainPausePoint,
    private readonly metrics: DrainMetrics,
    private readonly operatingTime: OperatingTimeTracker,
    config: AppConfig,
    appLogger: AppLogger,
  ) {
    this.log = appLogger.child('offline-queue');
    this.pageSize = config.drain.pageSize;
    this.maxPageSize = config.drain.maxPageSize;
    this.passSliceMs = config.drain.passSliceMs;
    this.retry = { baseMs: config.drain.retryBaseMs, capMs: config.drain.retryCapMs };
  }

  async drainPortal(memberId: string, options: DrainPassOptions = {}): Promise<DrainReport> {
    const startedAt = performance.now();
    const report: DrainReport = {
      memberId,
      outcome: 'drained',
      events: 0,
      pages: 0,
      largestPage: 0,
      recoveredBatches: 0,
      deliveryMode: 'exactly-once',
      durationMs: 0,
    };
    let lease: DrainLease | null = null;
    let released = false;
    let done: () => void = () => undefined;
    try {
      if (this.stopping) throw new DrainStoppingError();
      // Raw SQL: this runs on every pass, and an empty pass should cost next to nothing.
      const [portal]: { status: PortalStatus; delivery_mode: DeliveryMode }[] =
        await this.dataSource.query(
          `SELECT status, delivery_mode FROM portals WHERE member_id = $1`,
          [memberId],
        );
      if (portal) report.deliveryMode = portal.delivery_mode;
      if (!portal || portal.status !== 'active') {
        return this.finish(report, 'portal_not_active', startedAt);
      }
      lease =
        (await this.leases.acquire(memberId)) ?? (await this.leases.requestFromHolder(memberId));
      if (!lease) return this.finish(report, 'busy', startedAt);
      this.running.set(memberId, { lease, done: new Promise<void>((resolve) => (done = resolve)) });

      const pass: Pass = {
        lease,
        client: this.bitrix24.operationsFor(memberId),
        report,
        startedAtMs: Date.now(),
        shouldYield: () =>
          options.othersWaiting !== undefined &&
          Date.now() - pass.startedAtMs >= this.passSliceMs &&
          options.othersWaiting(),
      };
      await this.recover(pass);
      for (;;) {
        await this.drainQueue(pass);
        report.outcome = 'drained';
        if (report.yielded) break;
        released = await this.leases.releaseUnlessRequested(lease, report);
        if (released) break;
        // Another replica got a notification while this pass ran: its events may have come
        // after our last get, so go once more instead of leaving them to the poller.
        this.log.debug({ memberId }, 'drain requested by another replica: one more pass');
      }
    } catch (error) {
      const deferral = this.deferralOf(memberId, error);
      if (deferral) {
        report.outcome = 'deferred';
        report.retryInMs = deferral.waitMs;
        this.log.info(
          {
            memberId,
            waitMs: deferral.waitMs,
            operatingSeconds: deferral.usedSeconds,
            events: report.events,
          },
          'drain deferred until the operating-time window lets go',
        );
      } else {
        const gone =
          error instanceof PortalNotActiveError ||
          (error instanceof Bitrix24ApiError && error.category === 'portal_gone');
        report.outcome = gone ? 'portal_not_active' : 'failed';
        report.error = error instanceof Error ? error.message : String(error);
      }
    } finally {
      if (lease) {
        if (!released) await this.leases.release(lease, report);
        this.running.delete(memberId);
        done();
      }
    }
    report.retryInMs = await this.recordOutcome(report);
    return this.finish(report, report.outcome, startedAt);
  }

  /**
   * The pass must wait for the operating-time window: its budget is spent (DrainDeferredError) or
   * Bitrix24 answered OPERATION_TIME_LIMIT (to a get, a batch or the adoption's list); then the
   * wait is until that method's window lets go, plus a second.
   */
  private deferralOf(
    memberId: string,
    error: unknown,
  ): { waitMs: number; usedSeconds: number | undefined } | undefined {
    if (error instanceof DrainDeferredError) {
      return { waitMs: error.waitMs, usedSeconds: error.usedSeconds };
    }
    if (!isOperatingLimit(error)) return undefined;
    const parkedMs = this.operatingTime.parkedMs(memberId, error.method);
    const untilReset = this.operatingTime.msUntilReset(memberId, error.method);
    return {
      waitMs: parkedMs > 0 ? parkedMs + 1000 : waitForReset(untilReset),
      usedSeconds: this.operatingTime.usage(memberId, error.method)?.operatingSeconds,
    };
  }

  /**
   * Keeps the portal's run of failures in offline_queue_states: a failed pass adds one and sets
   * when the retry is due; a pass that drained clears it; a deferred pass sets when the next pass
   * is due and leaves the failures alone. Answers the wait before the retry, or undefined when no
   * retry is due. Shutdown and busy/inactive outcomes change nothing.
   */
  private async recordOutcome(report: DrainReport): Promise<number | undefined> {
    try {
      if (report.outcome === 'deferred') {
        const wait = report.retryInMs ?? 0;
        await this.dataSource.query(
          `INSERT INTO offline_queue_states (member_id, next_attempt_at)
           VALUES ($1, now() + $2 * interval '1 millisecond')
           ON CONFLICT (member_id) DO UPDATE SET next_attempt_at = EXCLUDED.next_attempt_at`,
          [report.memberId, wait],
        );
        return wait;
      }
      if (report.outcome === 'drained') {
        await this.dataSource.query(
          `UPDATE offline_queue_states
           SET consecutive_failures = 0, next_attempt_at = NULL, last_error = NULL
           WHERE member_id = $1 AND (consecutive_failures <> 0 OR next_attempt_at IS NOT NULL)`,
          [report.memberId],
        );
        return undefined;
      }
      if (report.outcome !== 'failed' || this.stopping) return undefined;
      if (report.error === new DrainStoppingError().message) return undefined;
      // One transaction: a reader never sees the new count with the previous retry time.
      const { failures, wait } = await this.dataSource.transaction(async (manager) => {
        const [row]: { consecutive_failures: number }[] = await manager.query(
          `INSERT INTO offline_queue_states (member_id, consecutive_failures, last_error)
           VALUES ($1, 1, $2)
           ON CONFLICT (member_id) DO UPDATE
             SET consecutive_failures = offline_queue_states.consecutive_failures + 1,
                 last_error = EXCLUDED.last_error
           RETURNING consecutive_failures`,
          [report.memberId, (report.error ?? 'unknown error').slice(0, 1000)],
        );
        const delay = retryDelayMs(row.consecutive_failures, this.retry.baseMs, this.retry.capMs);
        await manager.query(
          `UPDATE offline_queue_states SET next_attempt_at = now() + $2 * interval '1 millisecond'
           WHERE member_id = $1`,
          [report.memberId, delay],
        );
        return { failures: row.consecutive_failures, wait: delay };
      });
      if (failures === TROUBLE_AFTER_FAILURES) {
        this.log.warn(
          { memberId: report.memberId, failures },
          'portal in trouble: drains keep failing',
        );
      }
      return wait;
    } catch (error) {
      // The database is away: retry at the cap rather than not at all.
      this.log.warn({ err: error, memberId: report.memberId }, 'drain retry state not stored');
      if (report.outcome === 'deferred') return report.retryInMs;
      return report.outcome === 'failed' ? this.retry.capMs : undefined;
    }
  }

  onModuleDestroy(): void {
    this.stopping = true;
    this.stopRequestedAt = Date.now();
    this.pausePoint.stop();
  }

  /**
   * Lets running drains reach a safe point (a commit in progress finishes; no new page is taken).
   * Leases of drains still running at the deadline are released; their fencing token makes any
   * later commit of theirs fail, so nothing they hold uncommitted can be cleared.
   */
  async beforeApplicationShutdown(): Promise<void> {
    if (this.running.size === 0) return;
    const remaining = Math.max(0, this.stopRequestedAt + SHUTDOWN_GRACE_MS - Date.now());
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([...this.running.values()].map((drain) => drain.done)),
      new Promise((resolve) => (timer = setTimeout(resolve, remaining))),
    ]);
    clearTimeout(timer);
    for (const [memberId, { lease }] of this.running) {
      this.log.warn(
        { memberId },
        'drain still running at shutdown: lease released, work abandoned',
      );
      await this.leases.release(lease, {
        outcome: 'failed',
        events: 0,
        error: 'abandoned at shutdown',
      });
    }
  }

  private finish(report: DrainReport, outcome: DrainOutcome, startedAt: number): DrainReport {
    report.outcome = outcome;
    report.durationMs = Math.round(performance.now() - startedAt);
    this.metrics.drains.inc({ outcome });
    this.metrics.duration.observe({ outcome }, report.durationMs / 1000);
    const fields = { ...report };
    if (outcome === 'failed') {
      this.log.warn(fields, 'drain failed; the next pass resumes');
    } else if (report.events > 0 || report.recoveredBatches > 0) {
      this.log.info(fields, 'drain finished');
    } else {
      this.log.debug(fields, 'drain finished');
    }
    return report;
  }

  private ensureRunning(lease: DrainLease): void {
    if (this.stopping) throw new DrainStoppingError();
    lease.ensureHeld();
  }

  // ---- recovery -------------------------------------------------------------------------------

  /**
   * Resumes committed but uncleared batches and adopts reserved ones. At a pass's start only when
   * the previous pass left cause to (`afterLostAnswer` false); after a lost answer, always.
   */
  private async recover(pass: Pass, afterLostAnswer = false): Promise<void> {
    const { lease } = pass;
    // The flag comes from the acquire statement's snapshot. A holder whose commit was under way
    // while we waited for its row lock (a takeover, so never a clean finish) may have committed a
    // batch that snapshot did not see: after an unclean pass the ledger is read in any case.
    if (afterLostAnswer || lease.previous.hasUnclearedBatches || !lease.previous.cleanlyFinished) {
      for (const processId of await this.ledger.unclearedBatches(lease.memberId)) {
        await this.resumeBatch(pass, processId);
      }
    }
    if (!afterLostAnswer && !this.adoptionDue(lease.previous)) return;
    const checkedAt = new Date();
    const { processIds, complete } = await this.reservedBatches(pass);
    for (const processId of processIds) await this.resumeBatch(pass, processId);
    if (complete) await this.leases.recordAdoptionCheck(lease, checkedAt);
  }

  /**
   * Adoption costs one event.offline.list request, so it runs when a reserved batch may have been
   * stranded: after a pass that did not finish cleanly (crash, failure, shutdown, lost lease), on
   * a portal's first drain, and periodically as a safety net for holders that lost their lease
   * unnoticed.
   */
  private adoptionDue(previous: PreviousDrain): boolean {
    return (
      !previous.cleanlyFinished ||
      previous.adoptionCheckedAt === null ||
      Date.now() - previous.adoptionCheckedAt.getTime() > ADOPTION_CHECK_INTERVAL_MS
    );
  }

  /** process_ids of rows Bitrix24 holds reserved (visible in event.offline.list with a PROCESS_ID). */
  private async reservedBatches(pass: Pass): Promise<{ processIds: string[]; complete: boolean }> {
    const processIds = new Set<string>();
    let start: number | undefined = 0;
    for (let page = 0; page < MAX_ADOPTION_LIST_PAGES && start !== undefined; page += 1) {
      this.ensureRunning(pass.lease);
      const listed = await pass.client.offlineList({
        filter: { '>PROCESS_ID': '' },
        order: { ID: 'ASC' },
        start,
      });
      for (const row of listed.rows) if (row.PROCESS_ID) processIds.add(row.PROCESS_ID);
      start = listed.rows.length > 0 ? listed.next : undefined;
    }
    return { processIds: [...processIds], complete: start === undefined };
  }

  /**
   * Takes over a reserved batch: fetch its rows again with its process_id, commit them (rows
   * already stored are skipped), clear them. The batch is re-read in pages of DRAIN_MAX_PAGE_SIZE
   * (no page of ours is larger, so one read normally holds it all); a batch larger than that (from
   * a replica configured larger) is cleared row by row until the last, short page, after which the
   * whole batch is cleared.
   */
  private async resumeBatch(pass: Pass, processId: string): Promise<void> {
    const { lease, client, report } = pass;
    const limit = this.maxPageSize;
    for (;;) {
      this.ensureRunning(lease);
      let page: OfflineGetResult;
      try {
        page = await client.offlineGet({ processId, clear: false, limit });
      } catch (error) {
        if (!isWrongLicense(error)) throw error;
        await this.takeBatchAtMostOnce(pass, processId);
        break;
      }
      this.assertPage(lease.memberId, page);
      if (page.events.length > 0) await this.commit(pass, processId, page.events, 'exactly-once');
      this.ensureRunning(lease);
      if (page.events.length === limit) {
        await client.offlineClear({ processId, ids: page.events.map((event) => Number(event.ID)) });
        continue;
      }
      // A short page is the rest of the batch; an empty one means Bitrix24 holds none of it.
      if (page.events.length > 0) await client.offlineClear({ processId });
      await this.ledger.markCleared(lease.memberId, processId);
      break;
    }
    report.recoveredBatches += 1;
    this.metrics.recoveredBatches.inc();
    this.log.info({ memberId: lease.memberId, processId }, 'reserved batch recovered');
  }

  /**
   * The plan lost rest_offline_extended while a batch was reserved: clear=0 is refused now, so the
   * batch is read with clear=1, which deletes all of it as it is read (at-most-once, like the rest
   * of this portal's drains until the feature returns). The limit covers any batch we reserve.
   */
  private async takeBatchAtMostOnce(pass: Pass, processId: string): Promise<void> {
    const { lease } = pass;
    this.ensureRunning(lease);
    const page = await this.readAndDelete(pass, MAX_RESERVED_BATCH, processId);
    await this.setDeliveryMode(pass, 'at-most-once');
    if (page.events.length > 0) await this.commitAtMostOnce(pass, processId, page.events);
    await this.ledger.markCleared(lease.memberId, processId);
  }

  // ---- draining -------------------------------------------------------------------------------

  /**
   * Drains page by page. A request that takes rows as it answers (get, clear-and-get) and lost its
   * answer is never repeated blindly: the batches it may have reserved (event.offline.list) and
   * the committed batch it may have cleared (the ledger) are settled now, then draining goes on.
   */
  private async drainQueue(pass: Pass): Promise<void> {
    for (let recoveries = 0; ; recoveries += 1) {
      try {
        await this.drainPages(pass);
        return;
      } catch (error) {
        // A clear=1 read took its rows with it: nothing is left to settle (the loss is reported).
        const atMostOnce = pass.report.deliveryMode === 'at-most-once';
        if (!mayHaveRun(error) || atMostOnce || recoveries >= MAX_IN_PASS_RECOVERIES) throw error;
        this.log.info(
          {
            memberId: pass.lease.memberId,
            code: error instanceof Bitrix24ApiError ? error.bitrixCode : undefined,
          },
          'offline-queue answer lost: settling what it may have taken, in this pass',
        );
        await this.recover(pass, true);
      }
    }
  }

  private async drainPages(pass: Pass): Promise<void> {
    const { lease, client } = pass;
    const memberId = lease.memberId;
    const paging = new BacklogPaging({
      pageSize: this.pageSize,
      maxPageSize: this.maxPageSize,
      limitSeconds: this.operatingTime.limitSeconds,
    });
    this.ensureRunning(lease);
    let asked = this.pageSize;
    let page: OfflineGetResult;
    let pageTime: RestTime | undefined;
    try {
      const first = await client.offlineGet({ clear: false, limit: asked });
      page = first;
      pageTime = first.time;
    } catch (error) {
      if (isWrongLicense(error)) return this.drainAtMostOnce(pass);
      throw error;
    }
    await this.setDeliveryMode(pass, 'exactly-once');

    for (let pageNumber = 1; page.events.length > 0; pageNumber += 1) {
      const processId = this.assertPage(memberId, page);
      await this.pausePoint.reached('after-get', pageNumber, memberId);
      await this.commit(pass, processId, page.events, 'exactly-once');
      await this.pausePoint.reached('after-commit', pageNumber, memberId);
      this.ensureRunning(lease);

      const step = paging.next(this.pageAnswer(pass, asked, page.events.length, pageTime));
      this.log.debug(
        {
          memberId,
          page: pageNumber,
          asked,
          rows: page.events.length,
          next: step.kind === 'page' ? step.limit : 'deferred',
        },
        'drain page',
      );
      if (step.kind === 'defer') {
        // The budget cannot pay for another page: clear this one (event.offline.clear has its
        // own budget) and wait for the window, leaving nothing reserved.
        await this.clearOnItsOwn(pass, processId);
        throw new DrainDeferredError(memberId, step.waitMs, step.usedSeconds);
      }
      if (pass.shouldYield()) {
        // Others wait for a slot: clear this page on its own and queue again behind them.
        await this.clearOnItsOwn(pass, processId);
        pass.report.yielded = true;
        this.log.debug({ memberId, events: pass.report.events }, 'drain pass yields its slot');
        return;
      }
      asked = step.limit;

      // One request: clear what is now committed, and reserve the next page.
      let answer: BatchResult;
      try {
        answer = await client.batch(
          {
            clear: { method: 'event.offline.clear', params: { process_id: processId } },
            next: {
              method: 'event.offline.get',
              params: { clear: 0, limit: asked, order: OFFLINE_PAGE_ORDER },
            },
          },
          step.expectedRunMs !== undefined ? { expectedRunMs: step.expectedRunMs } : {},
        );
      } catch (error) {
        // Refused as a whole (a batch billed as `batch` and over its limit): nothing in it ran.
        // The committed page is cleared on its own, so the wait leaves nothing reserved.
        if (isOperatingLimit(error)) await this.clearOnItsOwn(pass, processId);
        throw error;
      }
      await this.pausePoint.reached('after-batch', pageNumber, memberId);
      const clearError = answer.errors.clear;
      if (clearError === undefined) await this.ledger.markCleared(memberId, processId);
      const nextError = answer.errors.next;
      if (nextError !== undefined) {
        // A refused command ran nothing; the method waits for its window like a refused call.
        if (nextError.error === OPERATION_TIME_LIMIT) {
          this.operatingTime.park(memberId, 'event.offline.get');
        }
        throw batchCommandError('event.offline.get', nextError);
      }
      page = this.pageFrom(answer.result.next);
      pageTime = answer.time;
      if (clearError !== undefined) {
        // The next page is already reserved: commit it so the next pass only has to clear both.
        const nextProcessId = this.assertPage(memberId, page);
        if (page.events.length > 0) {
          await this.commit(pass, nextProcessId, page.events, 'exactly-once');
        }
        throw new OfflineClearFailedError(memberId, processId, clearError.error);
      }
    }
  }

  /** Clears a committed page without reserving the next one: the pass ends after it. */
  private async clearOnItsOwn(pass: Pass, processId: string): Promise<void> {
    await pass.client.offlineClear({ processId });
    await this.ledger.markCleared(pass.lease.memberId, processId);
  }

  /**
   * What a page's answer told of the operating-time budget: its run time, and the budget used,
   * the larger of event.offline.get's and batch's `time.operating` (a batch may be billed either
   * way, docs/bitrix24/operating-time.md). A figure reported before this pass counts only while
   * its window has not reset (judged on Bitrix24's clock, the answer's `time.finish`, when it
   * sent one); older ones say nothing of the window now.
   */
  private pageAnswer(
    pass: Pass,
    asked: number,
    rows: number,
    time: RestTime | undefined,
  ): PageAnswer {
    const nowMs = Date.now();
    const bitrixNow = typeof time?.finish === 'number' && time.finish > 0 ? time.finish : undefined;
    let used: { seconds: number; resetAtMs: number | undefined } | undefined;
    for (const method of PAGE_METHODS) {
      const usage = this.operatingTime.usage(pass.lease.memberId, method);
      if (usage === undefined) continue;
      const current =
        usage.observedAtMs >= pass.startedAtMs ||
        (bitrixNow !== undefined && usage.resetAt !== undefined
          ? usage.resetAt > bitrixNow
          : (usage.resetAtMs ?? 0) > nowMs);
      if (!current || (used !== undefined && usage.operatingSeconds <= used.seconds)) continue;
      used = { seconds: usage.operatingSeconds, resetAtMs: usage.resetAtMs };
    }
    return {
      asked,
      rows,
      ...(typeof time?.duration === 'number' ? { runSeconds: time.duration } : {}),
      ...(used !== undefined ? { usedSeconds: used.seconds } : {}),
      ...(used?.resetAtMs !== undefined ? { resetInMs: used.resetAtMs - nowMs } : {}),
    };
  }

  /** Portals without rest_offline_extended: clear=1 deletes rows as they are read. */
  private async drainAtMostOnce(pass: Pass): Promise<void> {
    const { lease } = pass;
    this.ensureRunning(lease);
    let page = await this.readAndDelete(pass, this.pageSize);
    await this.setDeliveryMode(pass, 'at-most-once');
    while (page.events.length > 0) {
      await this.commitAtMostOnce(pass, null, page.events);
      this.ensureRunning(lease);
      page = await this.readAndDelete(pass, this.pageSize);
    }
  }

  /**
   * A clear=1 read deletes the rows it returns. When its answer is lost they are gone with it: the
   * executor does not repeat such a read (a repeat would only take the next rows), the pass fails,
   * and the possible loss is logged and counted, since nothing else will ever show it.
   */
  private async readAndDelete(
    pass: Pass,
    limit: number,
    processId?: string,
  ): Promise<OfflineGetResult> {
    try {
      return await pass.client.offlineGet({
        clear: true,
        limit,
        ...(processId !== undefined ? { processId } : {}),
      });
    } catch (error) {
      if (mayHaveRun(error)) {
        this.metrics.possibleLosses.inc({ reason: 'answer_lost' });
        this.log.warn(
          {
            memberId: pass.lease.memberId,
            processId,
            limit,
            code: error instanceof Bitrix24ApiError ? error.bitrixCode : undefined,
          },
          'at-most-once read (clear=1) got no answer: the events it may have deleted, up to its limit, are lost',
        );
      }
      throw error;
    }
  }

  private async commitAtMostOnce(
    pass: Pass,
    processId: string | null,
    events: readonly OfflineEvent[],
  ): Promise<void> {
    try {
      await this.commit(pass, processId, events, 'at-most-once');
    } catch (error) {
      this.metrics.possibleLosses.inc({ reason: 'commit_failed' });
      this.log.error(
        { err: error, memberId: pass.lease.memberId, lost: events.length },
        'at-most-once page could not be committed: its events are lost',
      );
      throw error;
    }
  }

  private async commit(
    pass: Pass,
    processId: string | null,
    events: readonly OfflineEvent[],
    mode: DeliveryMode,
  ): Promise<void> {
    const inserted = await this.ledger.commitPage(pass.lease, processId, events);
    pass.report.events += events.length;
    pass.report.pages += 1;
    pass.report.largestPage = Math.max(pass.report.largestPage, events.length);
    this.metrics.events.inc({ delivery_mode: mode }, events.length);
    this.metrics.pages.inc();
    const now = Date.now();
    for (const event of events) {
      const writtenAt = Date.parse(event.TIMESTAMP_X);
      if (!Number.isNaN(writtenAt)) {
        this.metrics.eventLag.observe(Math.max(0, now - writtenAt) / 1000);
      }
    }
    if (inserted < events.length) {
      this.log.debug(
        {
          memberId: pass.lease.memberId,
          processId,
          events: events.length,
          alreadyStored: events.length - inserted,
        },
        'page held rows already stored',
      );
    }
  }

  /** Records the delivery mode the portal actually gets; logged once per change. */
  private async setDeliveryMode(pass: Pass, mode: DeliveryMode): Promise<void> {
    if (pass.report.deliveryMode === mode) return;
    pass.report.deliveryMode = mode;
    const [, changed]: [unknown, number] = await this.dataSource.query(
      `UPDATE portals SET delivery_mode = $2, updated_at = now()
       WHERE member_id = $1 AND delivery_mode <> $2`,
      [pass.lease.memberId, mode],
    );
    if (changed === 0) return;
    if (mode === 'at-most-once') {
      this.log.warn(
        { memberId: pass.lease.memberId, deliveryMode: mode },
        'portal refuses clear=0 (WRONG_LICENSE: no rest_offline_extended): draining with clear=1, events may be lost on a crash',
      );
    } else {
      this.log.info(
        { memberId: pass.lease.memberId, deliveryMode: mode },
        'portal accepts clear=0 again: back to exactly-once delivery',
      );
    }
  }

  private pageFrom(result: unknown): OfflineGetResult {
    const answer = (result ?? {}) as Partial<OfflineGetResult>;
    return {
      process_id: typeof answer.process_id === 'string' ? answer.process_id : null,
      events: Array.isArray(answer.events) ? answer.events : [],
    };
  }

  /**
   * A clear=0 page must name its batch; without a process_id its rows could never be cleared. A
   * row's ID is what stores it once. Anything else odd in a row is the inbox's to store (dead if
   * need be), so it never blocks the drain.
   */
  private assertPage(memberId: string, page: OfflineGetResult): string {
    if (page.events.length > 0 && !page.process_id) {
      throw new UnexpectedOfflineAnswerError(memberId, 'rows without a process_id');
    }
    for (const event of page.events) {
      if (!/^\d+$/.test(String(event.ID))) {
        throw new UnexpectedOfflineAnswerError(memberId, 'a row without a numeric ID');
      }
    }
    return page.process_id ?? '';
  }
}
