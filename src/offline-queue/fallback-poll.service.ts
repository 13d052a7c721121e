import { Injectable, OnModuleDestroy } from '@nestjs/common';
import type { Logger } from 'pino';
import { DataSource } from 'typeorm';
import { AppConfig } from '../config/app-config';
import { AppLogger } from '../logging/app-logger';
import { DrainScheduler } from './drain-scheduler.service';

/** Requests are spread over this share of the interval, so a pass ends before the next begins. */
const SPREAD_SHARE = 0.8;

/**
 * The safety net for missed ONOFFLINEEVENT notifications (Bitrix24 throttles and never re-sends
 * them): every active portal not drained within POLL_INTERVAL_SECONDS gets a drain request. The
 * requests are spread evenly (with jitter) over the interval, so thousands of portals never
 * burst, and go through the scheduler's bounded concurrency.
 */
@Injectable()
export class FallbackPollService implements OnModuleDestroy {
  private readonly log: Logger;
  private stopping = false;
  private wakeUp: (() => void) | undefined;

  constructor(
    private readonly dataSource: DataSource,
    private readonly scheduler: DrainScheduler,
    private readonly config: AppConfig,
    appLogger: AppLogger,
  ) {
    this.log = appLogger.child('offline-queue');
  }

  /** One pass: finds the portals due and requests their drains over the interval. */
  async pollOnce(random: () => number = Math.random): Promise<number> {
    const intervalSeconds = this.config.drain.pollIntervalSeconds;
    const rows: { member_id: string }[] = await this.dataSource.query(
      `SELECT p.member_id FROM portals p
       LEFT JOIN offline_queue_states s ON s.member_id = p.member_id
       WHERE p.status = 'active'
         AND COALESCE(GREATEST(s.last_drain_started_at, s.last_drain_finished_at), '-infinity')
             < now() - make_interval(secs => $1)
       ORDER BY GREATEST(s.last_drain_started_at, s.last_drain_finished_at) NULLS FIRST`,
      [intervalSeconds],
    );
    const due = rows.map((row) => row.member_id).filter((id) => !this.scheduler.isScheduled(id));
    if (due.length === 0) return 0;
    this.log.info({ portals: due.length, intervalSeconds }, 'fallback poll: requesting drains');
    const slotMs = (intervalSeconds * 1000 * SPREAD_SHARE) / due.length;
    const passStartedAt = Date.now();
    for (const [index, memberId] of due.entries()) {
      // Each portal at a random moment of its own slot: even spread, no lockstep between replicas.
      const at = passStartedAt + (index + random()) * slotMs;
      await this.sleepUntil(at);
      if (this.stopping) break;
      this.scheduler.request(memberId);
    }
    return due.length;
  }

  onModuleDestroy(): void {
    this.stopping = true;
    this.wakeUp?.();
  }

  private async sleepUntil(at: number): Promise<void> {
    const delay = at - Date.now();
    if (delay <= 0 || this.stopping) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, delay);
      this.wakeUp = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.wakeUp = undefined;
  }
}
