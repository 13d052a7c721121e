import { ManualClock } from '../clock';
import { OperatingTimeMeter } from './operating-time';

describe('OperatingTimeMeter', () => {
  it('sums a method over the last ten minutes and forgets older minutes', () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 1, 12, 0, 0));
    const meter = new OperatingTimeMeter(clock);
    meter.record('crm.deal.add', 2);
    clock.advance(5 * 60_000);
    meter.record('crm.deal.add', 3);
    meter.record('event.offline.get', 7);

    expect(meter.usage('crm.deal.add').operatingSeconds).toBe(5);
    expect(meter.usage('crm.deal.add').resetAt).toBe(Date.UTC(2026, 0, 1, 12, 10, 0) / 1000);

    clock.advance(6 * 60_000);
    expect(meter.usage('crm.deal.add').operatingSeconds).toBe(3);
  });
});

describe('OperatingTimeMeter settings', () => {
  it('models a call as a base plus a share per returned row, for configured methods only', () => {
    const meter = new OperatingTimeMeter(new ManualClock());
    meter.configure({
      costs: { 'event.offline.get': { baseSeconds: 0.05, perRowSeconds: 0.002 } },
    });

    expect(meter.modelledSeconds('event.offline.get', 1000)).toBeCloseTo(2.05);
    expect(meter.modelledSeconds('event.offline.get', 0)).toBeCloseTo(0.05);
    expect(meter.modelledSeconds('app.info', 10)).toBeUndefined();
  });

  it('blocks a method once its window holds more than the limit, and lets go as minutes leave it', () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 1, 12, 0, 0));
    const meter = new OperatingTimeMeter(clock);
    expect(meter.settings.limitSeconds).toBe(480);
    meter.configure({ limitSeconds: 10 });
    meter.record('event.offline.get', 10);
    expect(meter.blocked('event.offline.get')).toBe(false);

    clock.advance(60_000);
    meter.record('event.offline.get', 0.5);
    expect(meter.blocked('event.offline.get')).toBe(true);
    expect(meter.blocked('event.offline.clear')).toBe(false);
    expect(meter.usage('event.offline.get').resetAt).toBe(Date.UTC(2026, 0, 1, 12, 10, 0) / 1000);

    clock.advance(9 * 60_000);
    expect(meter.usage('event.offline.get').operatingSeconds).toBeCloseTo(0.5);
    expect(meter.blocked('event.offline.get')).toBe(false);
    expect(meter.report()['event.offline.get'].peakSeconds).toBeCloseTo(10.5);
  });
});
