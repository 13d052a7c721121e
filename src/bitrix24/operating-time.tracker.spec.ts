import { Writable } from 'node:stream';
import type { AppConfig } from '../config/app-config';
import { AppLogger, createPinoLogger } from '../logging/app-logger';
import { MetricsRegistry } from '../metrics/metrics.registry';
import type { RestTime } from './bitrix24.types';
import { OPERATING_TIME_KEYS, OperatingTimeTracker } from './operating-time.tracker';

const CONFIG = { bitrix24: { operatingLimitSeconds: 480 } } as AppConfig;

function time(operating: number, resetAt?: number): RestTime {
  return {
    start: 0,
    finish: 0,
    duration: 0,
    processing: 0,
    date_start: '',
    date_finish: '',
    operating,
    ...(resetAt !== undefined ? { operating_reset_at: resetAt } : {}),
  };
}

describe('OperatingTimeTracker', () => {
  let lines: string[];
  let tracker: OperatingTimeTracker;
  let metrics: MetricsRegistry;

  beforeEach(() => {
    lines = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        lines.push(chunk.toString('utf8'));
        callback();
      },
    });
    metrics = new MetricsRegistry();
    tracker = new OperatingTimeTracker(
      new AppLogger(createPinoLogger('info', sink)),
      metrics,
      CONFIG,
    );
  });

  it('keeps the latest time.operating per portal and method', () => {
    tracker.record('m1', 'crm.deal.list', time(3.5, 2_000_000_000));
    tracker.record('m1', 'crm.deal.list', time(4), 1_000);
    tracker.record('m2', 'crm.deal.list', time(1));
    expect(tracker.usage('m1', 'crm.deal.list')).toEqual({
      operatingSeconds: 4,
      resetAtMs: undefined,
      resetAt: undefined,
      observedAtMs: 1_000,
    });
    expect(tracker.usage('m2', 'crm.deal.list')?.operatingSeconds).toBe(1);
    expect(tracker.usage('m1', 'app.info')).toBeUndefined();
  });

  it('ignores answers without time.operating', () => {
    tracker.record('m1', 'app.info', undefined);
    tracker.record('m1', 'app.info', { ...time(0), operating: undefined });
    expect(tracker.usage('m1', 'app.info')).toBeUndefined();
  });

  it('knows how long until the window resets', () => {
    tracker.record('m1', 'crm.deal.list', time(100, 1_000_060));
    expect(tracker.msUntilReset('m1', 'crm.deal.list', 1_000_000_000)).toBe(60_000);
    expect(tracker.msUntilReset('m1', 'crm.deal.list', 2_000_000_000)).toBe(0);
    expect(tracker.msUntilReset('m1', 'other.method', 1_000_000_000)).toBe(0);
  });

  it("takes the wait until the reset from the answer's own clock, so a skewed Bitrix24 clock does not move it", () => {
    // Bitrix24's clock is an hour ahead of ours: its reset_at is 90 s after its own finish.
    const answer = { ...time(10, 1_000_000 + 3600 + 90), finish: 1_000_000 + 3600 };
    tracker.record('m1', 'event.offline.get', answer, 1_000_000_000);
    expect(tracker.usage('m1', 'event.offline.get')?.resetAtMs).toBe(1_000_090_000);
    expect(tracker.msUntilReset('m1', 'event.offline.get', 1_000_000_000)).toBe(90_000);
  });

  it('remembers a bounded number of portal and method pairs, forgetting the least recently reported', () => {
    for (let i = 0; i <= OPERATING_TIME_KEYS; i += 1) tracker.record(`m${i}`, 'batch', time(1));
    expect(tracker.size).toBe(OPERATING_TIME_KEYS);
    expect(tracker.usage('m0', 'batch')).toBeUndefined();
    expect(tracker.usage(`m${OPERATING_TIME_KEYS}`, 'batch')?.operatingSeconds).toBe(1);
  });

  it('warns once when a method nears its limit, and again only after it fell back', async () => {
    tracker.record('m1', 'crm.deal.list', time(390));
    tracker.record('m1', 'crm.deal.list', time(400));
    tracker.record('m1', 'crm.deal.list', time(10));
    tracker.record('m1', 'crm.deal.list', time(420));
    const warnings = lines.filter((line) => line.includes('operating-time limit'));
    expect(warnings).toHaveLength(2);
    expect(JSON.parse(warnings[0])).toMatchObject({ memberId: 'm1', method: 'crm.deal.list' });
    expect(
      await metrics.registry.getSingleMetricAsString('bitrix24_method_operating_seconds'),
    ).toContain('bitrix24_method_operating_seconds_count{method="crm.deal.list"} 4');
  });
});
