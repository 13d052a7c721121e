import { SchedulerRegistry } from '@nestjs/schedule';
import { loadConfig } from '../config/app-config';
import { AppLogger, createPinoLogger } from '../logging/app-logger';
import { TokenKeepAliveScheduler } from './token-keep-alive.scheduler';
import type {
  KeepAliveReport,
  PaymentProbeReport,
  TokenKeepAlive,
} from './token-keep-alive.service';

interface ControlledRun {
  spreadMs?: number;
  finish: () => void;
}

/** A keep-alive whose runs last until the test ends them. */
class ControlledKeepAlive {
  runs: ControlledRun[] = [];
  probes: ControlledRun[] = [];

  refreshDueChains(options: { spreadMs?: number }): Promise<KeepAliveReport> {
    return new Promise((resolve) => {
      this.runs.push({
        spreadMs: options.spreadMs,
        finish: () => resolve({ due: 0, refreshed: 0, failed: 0 }),
      });
    });
  }

  probePaymentRequired(options: { spreadMs?: number }): Promise<PaymentProbeReport> {
    return new Promise((resolve) => {
      this.probes.push({
        spreadMs: options.spreadMs,
        finish: () => resolve({ probed: 0, recovered: 0, unpaid: 0, failed: 0 }),
      });
    });
  }
}

function schedulerWith(
  env: { keepAliveSeconds: string; probeSeconds?: string },
  keepAlive: ControlledKeepAlive,
) {
  const config = loadConfig({
    BITRIX24_CLIENT_ID: 'app',
    BITRIX24_CLIENT_SECRET: 'secret',
    TOKEN_KEEP_ALIVE_INTERVAL_SECONDS: env.keepAliveSeconds,
    PAYMENT_REQUIRED_PROBE_INTERVAL_SECONDS: env.probeSeconds,
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
    const { scheduler } = schedulerWith({ keepAliveSeconds: '10' }, keepAlive);
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

  it('probes payment_required portals every 15 minutes by default, on its own schedule', async () => {
    const keepAlive = new ControlledKeepAlive();
    const { scheduler } = schedulerWith({ keepAliveSeconds: '600' }, keepAlive);
    scheduler.onApplicationBootstrap();

    await jest.advanceTimersByTimeAsync(600_000);
    expect(keepAlive.runs).toHaveLength(1);
    expect(keepAlive.probes).toHaveLength(0);
    await jest.advanceTimersByTimeAsync(300_000);
    expect(keepAlive.probes).toHaveLength(1);
    expect(keepAlive.probes[0].spreadMs).toBe(450_000);

    // A keep-alive run still going does not hold the probe back, nor does a probe overlap itself.
    await jest.advanceTimersByTimeAsync(900_000);
    expect(keepAlive.probes).toHaveLength(1);
    keepAlive.probes[0].finish();
    await jest.advanceTimersByTimeAsync(900_000);
    expect(keepAlive.probes).toHaveLength(2);
    expect(keepAlive.runs).toHaveLength(1);
    scheduler.onApplicationShutdown();
  });

  it('is off with an interval of 0, and stops at shutdown', async () => {
    const off = new ControlledKeepAlive();
    const { scheduler: disabled, registry } = schedulerWith(
      { keepAliveSeconds: '0', probeSeconds: '0' },
      off,
    );
    disabled.onApplicationBootstrap();
    expect(registry.getIntervals()).toEqual([]);

    const on = new ControlledKeepAlive();
    const { scheduler } = schedulerWith({ keepAliveSeconds: '10', probeSeconds: '10' }, on);
    scheduler.onApplicationBootstrap();
    scheduler.onApplicationShutdown();
    await jest.advanceTimersByTimeAsync(60_000);
    expect(on.runs).toHaveLength(0);
    expect(on.probes).toHaveLength(0);
  });
});
