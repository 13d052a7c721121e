import { Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import { AppConfig } from '../config/app-config';
import { AppLogger } from '../logging/app-logger';

export type DrainPoint = 'after-get' | 'after-commit' | 'after-batch';

/**
 * Test-only fault hook (DRAIN_TEST_PAUSE_AT=<point>:<page>, refused in production): the drain
 * stops at that point of that page and logs it, so a crash test can SIGKILL the process at a
 * known place instead of racing a timer. The pause ends only when the application stops.
 */
@Injectable()
export class DrainPausePoint {
  private readonly target: { point: DrainPoint; page: number } | undefined;
  private readonly log: Logger;
  private release: (() => void) | undefined;
  private readonly released: Promise<void>;

  constructor(config: AppConfig, appLogger: AppLogger) {
    this.log = appLogger.child('offline-queue');
    const [point, page] = config.drain.testPauseAt?.split(':') ?? [];
    this.target = point ? { point: point as DrainPoint, page: Number(page) } : undefined;
    this.released = new Promise((resolve) => (this.release = resolve));
  }

  async reached(point: DrainPoint, page: number, memberId: string): Promise<void> {
    if (this.target?.point !== point || this.target.page !== page) return;
    this.log.warn({ memberId, point, page }, 'drain paused at test fault point');
    await this.released;
  }

  stop(): void {
    this.release?.();
  }
}
