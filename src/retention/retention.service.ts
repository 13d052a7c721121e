import { setTimeout as sleep } from 'node:timers/promises';
import { Injectable, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import type { Logger } from 'pino';
import type { Counter } from 'prom-client';
import { DataSource } from 'typeorm';
import { AppConfig } from '../config/app-config';
import { AppLogger } from '../logging/app-logger';
import { MetricsRegistry } from '../metrics/metrics.registry';

/**
 * Bitrix24 purges a reserved batch's rows after EventOfflineTable::PROCESS_ID_LIFETIME
 * (2,952,000 s, about 34 days; contract §1). A cleared batch is kept a little longer than that, so
 * the ledger outlives anything Bitrix24 could still return under its process_id.
 */
export const DRAIN_BATCH_RETENTION_DAYS = 35;
/** Rows per DELETE: each statement is short and holds its row locks briefly. */
const BATCH_ROWS = 2000;
/** One run stops after this long; the next run goes on where it stopped. */
const RUN_BUDGET_MS = 20_000;
const RUN_EVERY_MS = 10 * 60_000;
/** Between statements, so the drain and the inbox get the database in between. */
const PAUSE_BETWEEN_BATCHES_MS = 20;
const LOCK_KEY = 'retention';

export interface RetentionReport {
  storedEvents: number;
  drainBatches: number;
  /** False when another replica held the run. */
  ran: boolean;
}

/**
 * Retires data that would otherwise grow forever: processed events (their attempts go with them)
 * older than RETENTION_DAYS, and cleared drain batches past Bitrix24's process_id lifetime. Dead,
 * failed and pending events stay. An offline event is deleted only when its batch is cleared (or
 * was at-most-once), so a batch resumed later can never store one of its rows a second time.
 * One replica runs at a time (a session advisory lock), in small batches within a time budget.
 */
@Injectable()
export class RetentionService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly log: Logger;
  private readonly deleted: Counter<'table'>;
  private timer: NodeJS.Timeout | undefined;
  private stopping = false;
  private running: Promise<RetentionReport> | undefined;

  constructor(
    private readonly dataSource: DataSource,
    private readonly config: AppConfig,
    appLogger: AppLogger,
    metrics: MetricsRegistry,
  ) {
    this.log = appLogger.child('retention');
    this.deleted = metrics.counter(
      'retention_deleted_rows_total',
      'Rows retired by retention, by table',
      ['table'],
    );
  }

  onApplicationBootstrap(): void {
    if (this.config.retentionDays === 0) return;
    // Replicas started together do not all look at once.
    const first = Math.round(RUN_EVERY_MS * (0.1 + Math.random() * 0.9));
    this.timer = setTimeout(() => this.tick(), first);
    this.timer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.timer);
    await this.running?.catch(() => undefined);
  }

  /** One run now (the scheduler calls this; so can tests and operators). */
  runOnce(now = new Date()): Promise<RetentionReport> {
    this.running ??= this.run(now).finally(() => (this.running = undefined));
    return this.running;
  }

  private tick(): void {
    this.runOnce()
      .catch((error: unknown) => this.log.error({ err: error }, 'retention run failed'))
      .finally(() => {
        if (this.stopping) return;
        this.timer = setTimeout(() => this.tick(), RUN_EVERY_MS);
        this.timer.unref();
      });
  }

  private async run(now: Date): Promise<RetentionReport> {
    const report: RetentionReport = { storedEvents: 0, drainBatches: 0, ran: false };
    if (this.config.retentionDays === 0) return report;
    const runner = this.dataSource.createQueryRunner();
    await runner.connect();
    try {
      const rows = (await runner.query('SELECT pg_try_advisory_lock(hashtext($1)) AS locked', [
        LOCK_KEY,
      ])) as { locked: boolean }[];
      const locked = rows[0]?.locked === true;
      if (!locked) return report;
      report.ran = true;
      try {
        const deadline = Date.now() + RUN_BUDGET_MS;
        const eventsBefore = new Date(now.getTime() - this.config.retentionDays * 86_400_000);
        const batchesBefore = new Date(now.getTime() - DRAIN_BATCH_RETENTION_DAYS * 86_400_000);
        report.storedEvents = await this.inBatches(deadline, () =>
          runner.query(
            `DELETE FROM stored_events WHERE id IN (
               SELECT e.id FROM stored_events e
                WHERE e.status = 'processed' AND e.received_at < $1
                  AND NOT EXISTS (
                    SELECT 1 FROM drain_batches b
                     WHERE b.member_id = e.member_id AND b.process_id = e.process_id
                       AND b.state = 'committed')
                ORDER BY e.received_at
                LIMIT $2)`,
            [eventsBefore, BATCH_ROWS],
          ),
        );
        report.drainBatches = await this.inBatches(deadline, () =>
          runner.query(
            `DELETE FROM drain_batches WHERE (member_id, process_id) IN (
               SELECT member_id, process_id FROM drain_batches
                WHERE state = 'cleared' AND cleared_at < $1
                LIMIT $2)`,
            [batchesBefore, BATCH_ROWS],
          ),
        );
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

  /** Repeats a DELETE … LIMIT until it deletes fewer than a batch, time runs out or we stop. */
  private async inBatches(deadline: number, remove: () => Promise<unknown>): Promise<number> {
    let total = 0;
    for (;;) {
      // A DELETE answers [rows, affected count].
      const [, count] = (await remove()) as [unknown, number];
      total += count;
      if (count < BATCH_ROWS || Date.now() > deadline || this.stopping) return total;
      await sleep(PAUSE_BETWEEN_BATCHES_MS);
    }
  }
}
