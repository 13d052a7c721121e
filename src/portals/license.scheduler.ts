import { Injectable, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import type { Logger } from 'pino';
import { AppLogger } from '../logging/app-logger';
import { LicenseService } from './license.service';

const INTERVAL_NAME = 'license-daily-read';
const TICK_MS = 60_000;
/**
 * Daily reads per replica per minute. Each portal's read is due at its own time of day (a day
 * after the last one), so reads spread over the day; this cap only matters after an outage, when
 * the overdue ones are caught up at a steady pace instead of all at once.
 */
const READS_PER_TICK = 20;

/** Every minute, reads app.info of the portals whose daily read is due. */
@Injectable()
export class LicenseScheduler implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly stopping = new AbortController();
  private readonly log: Logger;
  private running = false;

  constructor(
    private readonly license: LicenseService,
    private readonly schedulerRegistry: SchedulerRegistry,
    appLogger: AppLogger,
  ) {
    this.log = appLogger.child('license');
  }

  onApplicationBootstrap(): void {
    const timer = setInterval(() => void this.tick(), TICK_MS);
    timer.unref();
    this.schedulerRegistry.addInterval(INTERVAL_NAME, timer);
  }

  onApplicationShutdown(): void {
    this.stopping.abort();
    if (this.schedulerRegistry.doesExist('interval', INTERVAL_NAME)) {
      this.schedulerRegistry.deleteInterval(INTERVAL_NAME);
    }
  }

  private async tick(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      await this.license.readDue(READS_PER_TICK, this.stopping.signal);
    } catch (error) {
      this.log.error({ err: error }, 'daily license reads failed');
    } finally {
      this.running = false;
    }
  }
}
