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
