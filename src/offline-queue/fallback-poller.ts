import { Injectable, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import type { Logger } from 'pino';
import { AppConfig } from '../config/app-config';
import { AppLogger } from '../logging/app-logger';
import { FallbackPollService } from './fallback-poll.service';

const INTERVAL_NAME = 'offline-queue-fallback-poll';
/** The first pass comes soon after start, so a restarted replica resumes interrupted drains. */
const FIRST_PASS_DELAY_MS = 2000;

/**
 * Runs the fallback poll every POLL_INTERVAL_SECONDS (0 disables it). Thin: one service call per
 * tick, skipped while the previous pass still runs. The interval is configured at start, so it
 * is registered with SchedulerRegistry rather than declared with @Interval.
 */
@Injectable()
export class FallbackPoller implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly log: Logger;
  private pass: Promise<void> | undefined;
  private firstPass: NodeJS.Timeout | undefined;

  constructor(
    private readonly pollService: FallbackPollService,
    private readonly schedulerRegistry: SchedulerRegistry,
    private readonly config: AppConfig,
    appLogger: AppLogger,
  ) {
    this.log = appLogger.child('offline-queue');
  }

  onApplicationBootstrap(): void {
    const seconds = this.config.drain.pollIntervalSeconds;
    if (seconds === 0) return;
    this.schedulerRegistry.addInterval(
      INTERVAL_NAME,
      setInterval(() => this.tick(), seconds * 1000),
    );
    this.firstPass = setTimeout(() => this.tick(), Math.min(FIRST_PASS_DELAY_MS, seconds * 1000));
  }

  onModuleDestroy(): void {
    clearTimeout(this.firstPass);
    if (this.schedulerRegistry.doesExist('interval', INTERVAL_NAME)) {
      this.schedulerRegistry.deleteInterval(INTERVAL_NAME);
    }
  }

  private tick(): void {
    if (this.pass) return;
    this.pass = this.pollService
      .pollOnce()
      .then(() => undefined)
      .catch((error: unknown) => this.log.error({ err: error }, 'fallback poll failed'))
      .finally(() => (this.pass = undefined));
  }
}
