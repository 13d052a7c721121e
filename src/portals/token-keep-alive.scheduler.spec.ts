import { SchedulerRegistry } from '@nestjs/schedule';
import { loadConfig } from '../config/app-config';
import { AppLogger, createPinoLogger } from '../logging/app-logger';
import { TokenKeepAliveScheduler } from './token-keep-alive.scheduler';
import type { KeepAliveReport, TokenKeepAlive } from './token-keep-alive.service';

/** A keep-alive whose runs last until the test ends them. */
class ControlledKeepAlive {
  runs: { spreadMs?: number; finish: () => void }[] = [];

  refreshDueChains(options: { spreadMs?: number }): Promise<KeepAliveReport> {
    return new Promise((resolve) => {
      this.runs.push({
        spreadMs: options.spreadMs,
        finish: () => resolve({ due: 0, refreshed: 0, failed: 0 }),
      });
    });
  }
}

function schedulerWith(intervalSeconds: string, keepAlive: ControlledKeepAlive) {
  const config = loadConfig({
    BITRIX24_CLIENT_ID: 'app',
    BITRIX24_CLIENT_SECRET: 'secret',
    TOKEN_KEEP_ALIVE_INTERVAL_SECONDS: intervalSeconds,
  });
  const registry = new SchedulerRegistry();
  const scheduler = new TokenKeepAliveScheduler(
    keepAlive as unknown as TokenKeepAlive,
    registry,
    config,
    new AppLogger(createPinoLogger('silent')),
  );
  return { scheduler, registry };
}

describe('TokenKeepAliveScheduler', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('runs every interval, spreads a run over half of it, and never overlaps itself', async () => {
    const keepAlive = new ControlledKeepAlive();
    const { scheduler } = schedulerWith('10', keepAlive);
    scheduler.onApplicationBootstrap();

    await jest.advanceTimersByTimeAsync(10_000);
    expect(keepAlive.runs).toHaveLength(1);
    expect(keepAlive.runs[0].spreadMs).toBe(5_000);
    await jest.advanceTimersByTimeAsync(30_000);
    expect(keepAlive.runs).toHaveLength(1);

    keepAlive.runs[0].finish();
    await jest.advanceTimersByTimeAsync(10_000);
    expect(keepAlive.runs).toHaveLength(2);
    scheduler.onApplicationShutdown();
  });

  it('is off with TOKEN_KEEP_ALIVE_INTERVAL_SECONDS=0, and stops at shutdown', async () => {
    const off = new ControlledKeepAlive();
    const { scheduler: disabled, registry } = schedulerWith('0', off);
    disabled.onApplicationBootstrap();
    expect(registry.getIntervals()).toEqual([]);

    const on = new ControlledKeepAlive();
    const { scheduler } = schedulerWith('10', on);
    scheduler.onApplicationBootstrap();
    scheduler.onApplicationShutdown();
    await jest.advanceTimersByTimeAsync(60_000);
    expect(on.runs).toHaveLength(0);
  });
});
