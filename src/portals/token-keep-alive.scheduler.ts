import { Injectable, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import type { Logger } from 'pino';
import { AppConfig } from '../config/app-config';
import { AppLogger } from '../logging/app-logger';
import { TokenKeepAlive } from './token-keep-alive.service';

const INTERVAL_NAME = 'token-keep-alive';

/** Runs the keep-alive every TOKEN_KEEP_ALIVE_INTERVAL_SECONDS; a run still going skips the tick. */
@Injectable()
export class TokenKeepAliveScheduler implements OnApplicationBootstrap, OnApplicationShutdown {
  private running = false;
  private readonly stopping = new AbortController();
  private readonly log: Logger;

  constructor(
    private readonly keepAlive: TokenKeepAlive,
    private readonly schedulerRegistry: SchedulerRegistry,
    private readonly config: AppConfig,
    appLogger: AppLogger,
  ) {
    this.log = appLogger.child('token-keep-alive');
  }

  onApplicationBootstrap(): void {
    const seconds = this.config.bitrix24.tokenKeepAliveIntervalSeconds;
    if (seconds === 0) return;
    const timer = setInterval(() => void this.tick(seconds * 1000), seconds * 1000);
    this.schedulerRegistry.addInterval(INTERVAL_NAME, timer);
  }

  onApplicationShutdown(): void {
    this.stopping.abort();
    if (this.schedulerRegistry.doesExist('interval', INTERVAL_NAME)) {
      this.schedulerRegistry.deleteInterval(INTERVAL_NAME);
    }
  }

  private async tick(intervalMs: number): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      // Spread over half the interval, so a run ends well before the next begins.
      await this.keepAlive.refreshDueChains({
        spreadMs: intervalMs / 2,
        signal: this.stopping.signal,
      });
    } catch (error) {
      this.log.error({ err: error }, 'keep-alive run failed');
    } finally {
      this.running = false;
    }
  }
}
