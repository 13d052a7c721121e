import { Injectable, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import type { Logger } from 'pino';
import { AppConfig } from '../config/app-config';
import { AppLogger } from '../logging/app-logger';
import { TokenKeepAlive } from './token-keep-alive.service';

const KEEP_ALIVE_INTERVAL = 'token-keep-alive';
const PAYMENT_PROBE_INTERVAL = 'payment-required-probe';

/**
 * Runs the keep-alive every TOKEN_KEEP_ALIVE_INTERVAL_SECONDS and the payment probe every
 * PAYMENT_REQUIRED_PROBE_INTERVAL_SECONDS; a run still going skips its next tick.
 */
@Injectable()
export class TokenKeepAliveScheduler implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly running = new Set<string>();
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
    const { tokenKeepAliveIntervalSeconds, paymentProbeIntervalSeconds } = this.config.bitrix24;
    this.every(KEEP_ALIVE_INTERVAL, tokenKeepAliveIntervalSeconds, (options) =>
      this.keepAlive.refreshDueChains(options),
    );
    this.every(PAYMENT_PROBE_INTERVAL, paymentProbeIntervalSeconds, (options) =>
      this.keepAlive.probePaymentRequired(options),
    );
  }

  onApplicationShutdown(): void {
    this.stopping.abort();
    for (const name of [KEEP_ALIVE_INTERVAL, PAYMENT_PROBE_INTERVAL]) {
      if (this.schedulerRegistry.doesExist('interval', name)) {
        this.schedulerRegistry.deleteInterval(name);
      }
    }
  }

  /** `seconds` 0 leaves the run off. */
  private every(
    name: string,
    seconds: number,
    run: (options: { spreadMs: number; signal: AbortSignal }) => Promise<unknown>,
  ): void {
    if (seconds === 0) return;
    const intervalMs = seconds * 1000;
    const timer = setInterval(() => void this.tick(name, intervalMs, run), intervalMs);
    this.schedulerRegistry.addInterval(name, timer);
  }

  private async tick(
    name: string,
    intervalMs: number,
    run: (options: { spreadMs: number; signal: AbortSignal }) => Promise<unknown>,
  ): Promise<void> {
    if (this.running.has(name)) return;
    this.running.add(name);
    try {
      // Spread over half the interval, so a run ends well before the next begins.
      await run({ spreadMs: intervalMs / 2, signal: this.stopping.signal });
    } catch (error) {
      this.log.error({ err: error, run: name }, 'scheduled token run failed');
    } finally {
      this.running.delete(name);
    }
  }
}
