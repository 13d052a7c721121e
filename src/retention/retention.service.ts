import { setTimeout as sleep } from 'node:timers/promises';
import { Injectable, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import type { Logger } from 'pino';
import type { Counter } from 'prom-client';
import { DataSource, QueryRunner } from 'typeorm';
import { AppConfig } from '../config/app-config';
import { AppLogger } from '../logging/app-logger';
import { MetricsRegistry } from '../metrics/metrics.registry';

/**
 * Bitrix24 purges a reserved batch's rows after EventOfflineTable::PROCESS_ID_LIFETIME
 * (2,952,000 s, about 34 days; contract §1). A cleared batch is kept a little longer than that, so
 * the ledger outlives anything Bitrix24 could still return under its process_id.
 */
export const DRAIN_BATCH_RETENTION_DAYS = 35;
/** Rows per batch: each batch is one short transaction, so its row locks are held briefly. */
const BATCH_ROWS = 500;
/** One run stops after this long; the next run goes on where it stopped. */
const RUN_BUDGET_MS = 20_000;
/**
 * Between batches retention waits four times as long as the last batch took (at least 20 ms), so
 * it keeps the database busy a fifth of the time at most and the drain and the inbox get the rest:
 * still a hundred times what a million new events a day need.
 */
const PAUSE_PER_BATCH = 4;
const MIN_PAUSE_BETWEEN_BATCHES_MS = 20;
/** A run that stopped at its budget with rows left is followed by the next one this soon. */
const CATCH_UP_AFTER_MS = 5000;
/**
 * SKIP LOCKED never waits on a row the drain or the inbox holds; this bounds any other wait of a
 * batch (a cascaded row, a table lock of a migration): the batch gives way and the run ends.
 */
const LOCK_TIMEOUT_MS = 1000;
const LOCK_KEY = 'retention';
/** Postgres's lock_not_available, raised when lock_timeout fires. */
const LOCK_NOT_AVAILABLE = '55P03';

export interface RetentionReport {
  /** False when another replica held the run. */
  ran: boolean;
  storedEvents: number;
  drainBatches: number;
  /**
   * The longest batch of the run, from its DELETE to its COMMIT: the longest any row lock taken
   * by retention was held.
   */
  longestStatementMs: number;
}

/** Where the events' walk stands: the finish time and id of the last row it deleted. */
interface EventCursor {
  /** As Postgres writes it (microseconds kept), handed back as text. */
  finishedAt: string;
  id: string;
}

/**
 * The rows of stored_events that retention may delete, oldest finish first, after `$3/$4`:
 * - processed, discarded or unhandled (dead, failed and pending events stay), and finished before
 *   `$1`, counted from the last attempt (a replay, a discard), not from receipt: the index orders
 *   by processed_at, or received_at where there is none (a discard, a run that found no handler:
 *   a time before its last attempt), and no attempt of the event may have finished since `$1`;
 * - not claimed by an inbox run (a replay of a processed event runs with its status unchanged);
 * - not a robot run whose answer Bitrix24 has not been sent yet;
 * - not an offline row of a batch still uncleared: Bitrix24 returns such a row again when the
 *   drain resumes the batch, and only this row makes the drain skip it (exactly once);
 * - not locked by anyone (SKIP LOCKED).
 * Their attempts and robot answers go with them (ON DELETE CASCADE).
 */
export const RETIRE_EVENTS = `
  WITH doomed AS (
    SELECT e.id, COALESCE(e.processed_at, e.received_at) AS finished_at
      FROM stored_events e
     WHERE e.status IN ('processed','discarded','unhandled')
       AND COALESCE(e.processed_at, e.received_at) < $1
       AND (COALESCE(e.processed_at, e.received_at), e.id) > ($3::timestamptz, $4::bigint)
       AND (e.claim_expires_at IS NULL OR e.claim_expires_at < now())
       AND COALESCE((SELECT max(a.finished_at) FROM event_attempts a WHERE a.event_id = e.id),
                    '-infinity') < $1
       AND NOT EXISTS (SELECT 1 FROM robot_answers r
                        WHERE r.event_id = e.id AND r.state IN ('pending','sending'))
       AND NOT EXISTS (SELECT 1 FROM drain_batches b
                        WHERE b.member_id = e.member_id AND b.process_id = e.process_id
                          AND b.state = 'committed')
     ORDER BY COALESCE(e.processed_at, e.received_at), e.id
     LIMIT $2
       FOR UPDATE OF e SKIP LOCKED)
  , gone AS (
    DELETE FROM stored_events e USING doomed d
     WHERE e.id = d.id
    RETURNING d.finished_at, e.id)
  SELECT g.finished_at::text AS last_finished_at, g.id::text AS last_id,
         count(*) OVER ()::int AS count
    FROM gone g
   ORDER BY g.finished_at DESC, g.id DESC
   LIMIT 1`;

/** Cleared batches past Bitrix24's process_id lifetime, oldest first, none that anyone holds. */
const RETIRE_DRAIN_BATCHES = `
  WITH doomed AS (
    SELECT member_id, process_id FROM drain_batches
     WHERE state = 'cleared' AND cleared_at < $1
     ORDER BY cleared_at
     LIMIT $2
       FOR UPDATE SKIP LOCKED)
  DELETE FROM drain_batches b USING doomed d
   WHERE b.member_id = d.member_id AND b.process_id = d.process_id`;

/**
 * Retires data that would otherwise grow forever: processed, discarded and unhandled events (their
 * attempts go with them) whose last attempt is older than RETENTION_DAYS, and cleared drain
 * batches past Bitrix24's process_id lifetime. Dead events stay until the operator replays or
 * discards them. An unhandled event is never run again by itself: RETENTION_DAYS is the time the
 * operator has to replay it once a handler is deployed.
 * One replica runs at a time (a session advisory lock), every RETENTION_INTERVAL_SECONDS, in
 * batches of short transactions within a time budget.
 */
@Injectable()
export class RetentionService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly log: Logger;
  private readonly deleted: Counter<'table'>;
  private readonly intervalMs: number;
  private timer: NodeJS.Timeout | undefined;
  private stopping = false;
  private running: Promise<RetentionReport> | undefined;
  /** The last run stopped at its budget, not for want of rows. */
  private behind = false;
  private lastBatchMs = 0;

  constructor(
    private readonly dataSource: DataSource,
    private readonly config: AppConfig,
    appLogger: AppLogger,
    metrics: MetricsRegistry,
  ) {
    this.log = appLogger.child('retention');
    this.intervalMs = config.retentionIntervalSeconds * 1000;
    this.deleted = metrics.counter(
      'retention_deleted_rows_total',
      'Rows retired by retention, by table',
      ['table'],
    );
  }

  onApplicationBootstrap(): void {
    if (this.config.retentionDays === 0) return;
    // Replicas started together do not all look at once.
    const first = Math.round(this.intervalMs * (0.1 + Math.random() * 0.9));
    this.timer = setTimeout(() => this.tick(), first);
    this.timer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.timer);
    await this.running?.catch(() => undefined);
  }

  /**
   * One run now (the scheduler calls this; so can tests and operators), batches until nothing is
   * left or `budgetMs` has passed. A run already under way is joined instead.
   */
  runOnce(now = new Date(), budgetMs = RUN_BUDGET_MS): Promise<RetentionReport> {
    this.running ??= this.run(now, budgetMs).finally(() => (this.running = undefined));
    return this.running;
  }

  private tick(): void {
    this.runOnce()
      .catch((error: unknown) => this.log.error({ err: error }, 'retention run failed'))
      .finally(() => {
        if (this.stopping) return;
        const next = this.behind ? Math.min(CATCH_UP_AFTER_MS, this.intervalMs) : this.intervalMs;
        this.timer = setTimeout(() => this.tick(), next);
        this.timer.unref();
      });
  }

  private async run(now: Date, budgetMs: number): Promise<RetentionReport> {
    const report: RetentionReport = {
      ran: false,
      storedEvents: 0,
      drainBatches: 0,
      longestStatementMs: 0,
    };
    if (this.config.retentionDays === 0) return report;
    const runner = this.dataSource.createQueryRunner();
    await runner.connect();
    try {
      const rows = (await runner.query('SELECT pg_try_advisory_lock(hashtext($1)) AS locked', [
        LOCK_KEY,
      ])) as { locked: boolean }[];
      if (rows[0]?.locked !== true) return report;
      report.ran = true;
      try {
        this.behind = await this.retire(runner, now, Date.now() + budgetMs, report);
      } finally {
        await runner.query('SELECT pg_advisory_unlock(hashtext($1))', [LOCK_KEY]);
      }
    } finally {
      await runner.release();
    }
    if (report.storedEvents > 0) this.deleted.inc({ table: 'stored_events' }, report.storedEvents);
    if (report.drainBatches > 0) this.deleted.inc({ table: 'drain_batches' }, report.drainBatches);
    if (report.storedEvents + report.drainBatches > 0) {
      this.log.info({ ...report, retentionDays: this.config.retentionDays }, 'old rows retired');
    }
    return report;
  }

  private async retire(
    runner: QueryRunner,
    now: Date,
    deadline: number,
    report: RetentionReport,
  ): Promise<boolean> {
    const eventsBefore = new Date(now.getTime() - this.config.retentionDays * 86_400_000);
    const batchesBefore = new Date(now.getTime() - DRAIN_BATCH_RETENTION_DAYS * 86_400_000);
    // The events' walk goes forward through the index, so rows kept for a reason (an uncleared
    // batch, an unsent answer) are read once per run, not once per batch.
    let cursor: EventCursor = { finishedAt: '-infinity', id: '0' };
    for (;;) {
      const retired = await this.batch(runner, report, RETIRE_EVENTS, [
        eventsBefore,
        BATCH_ROWS,
        cursor.finishedAt,
        cursor.id,
      ]);
      if (retired === undefined) return false;
      // One row: the greatest key deleted (where the walk resumes) and how many were.
      const [last] = retired as { last_finished_at: string; last_id: string; count: number }[];
      const count = last?.count ?? 0;
      report.storedEvents += count;
      if (last) cursor = { finishedAt: last.last_finished_at, id: last.last_id };
      if (count < BATCH_ROWS) break;
      // Out of time with events left: the batches still get one batch, then the next run goes on.
      if (!(await this.goOn(deadline))) {
        await this.retireDrainBatches(runner, batchesBefore, deadline, report);
        return true;
      }
    }
    return this.retireDrainBatches(runner, batchesBefore, deadline, report);
  }

  /** Cleared batches, after the events; true when the run stopped with more of them left. */
  private async retireDrainBatches(
    runner: QueryRunner,
    batchesBefore: Date,
    deadline: number,
    report: RetentionReport,
  ): Promise<boolean> {
    for (;;) {
      const retired = await this.batch(runner, report, RETIRE_DRAIN_BATCHES, [
        batchesBefore,
        BATCH_ROWS,
      ]);
      if (retired === undefined) return false;
      // A DELETE answers [rows, affected count].
      const [, count] = retired as [unknown, number];
      report.drainBatches += count;
      if (count < BATCH_ROWS) return false;
      if (!(await this.goOn(deadline))) return true;
    }
  }

  /** After a full batch, with time left and not stopping: pause, then one more. */
  private async goOn(deadline: number): Promise<boolean> {
    if (Date.now() > deadline || this.stopping) return false;
    await sleep(Math.max(MIN_PAUSE_BETWEEN_BATCHES_MS, this.lastBatchMs * PAUSE_PER_BATCH));
    return true;
  }

  /**
   * One DELETE in its own transaction. Undefined when it gave way to a lock it would have waited
   * for longer than LOCK_TIMEOUT_MS: the run ends there, and the next one goes on.
   */
  private async batch(
    runner: QueryRunner,
    report: RetentionReport,
    sql: string,
    params: unknown[],
  ): Promise<unknown> {
    await runner.startTransaction();
    try {
      await runner.query(`SET LOCAL lock_timeout = ${LOCK_TIMEOUT_MS}`);
      const startedAt = performance.now();
      const result: unknown = await runner.query(sql, params);
      await runner.commitTransaction();
      this.lastBatchMs = performance.now() - startedAt;
      report.longestStatementMs = Math.max(report.longestStatementMs, Math.round(this.lastBatchMs));
      return result;
    } catch (error) {
      await runner.rollbackTransaction();
      if ((error as { code?: string }).code !== LOCK_NOT_AVAILABLE) throw error;
      this.log.info({ lockTimeoutMs: LOCK_TIMEOUT_MS }, 'retention gave way to a lock holder');
      return undefined;
    }
  }
}
