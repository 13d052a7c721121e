import type { AppConfig } from '../config/app-config';
import { OFFLINE_TIMEOUT_PORTALS, OfflineCallTimeout } from './offline-call-timeout';

function timeouts(floorMs: number, ceilingMs: number): OfflineCallTimeout {
  const config = {
    bitrix24: { requestTimeoutMs: ceilingMs, offlineRequestTimeoutMinMs: floorMs },
  } as AppConfig;
  return new OfflineCallTimeout(config);
}

describe('OfflineCallTimeout', () => {
  it('waits at most 10 s (or the request timeout) for a portal it has no answers from yet', () => {
    expect(timeouts(1000, 30_000).timeoutMs('a')).toBe(10_000);
    expect(timeouts(1000, 5000).timeoutMs('a')).toBe(5000);
  });

  it('follows a fast portal down to the floor and a slow one up to its answer times plus margin', () => {
    const t = timeouts(1000, 30_000);
    for (let i = 0; i < 20; i += 1) t.answered('fast', 20);
    expect(t.timeoutMs('fast')).toBe(1000);

    for (let i = 0; i < 20; i += 1) t.answered('slow', i % 2 === 0 ? 2000 : 3000);
    const slow = t.timeoutMs('slow');
    // Smoothed ≈ 2.5 s plus four deviations of ≈ 0.5 s: above every answer seen, below the ceiling.
    expect(slow).toBeGreaterThan(3000);
    expect(slow).toBeLessThan(30_000);
  });

  it('doubles the wait after each timeout up to the ceiling, and an answer ends the doubling', () => {
    const t = timeouts(1000, 30_000);
    for (let i = 0; i < 20; i += 1) t.answered('p', 20);
    t.timedOut('p');
    expect(t.timeoutMs('p')).toBe(2000);
    t.timedOut('p');
    expect(t.timeoutMs('p')).toBe(4000);
    for (let i = 0; i < 10; i += 1) t.timedOut('p');
    expect(t.timeoutMs('p')).toBe(30_000);
    t.answered('p', 20);
    expect(t.timeoutMs('p')).toBe(1000);
  });

  it('a timeout before any answer doubles from the first-call wait', () => {
    const t = timeouts(1000, 30_000);
    t.timedOut('p');
    expect(t.timeoutMs('p')).toBe(20_000);
  });

  it('never goes below the floor, and a floor above the request timeout is the request timeout', () => {
    const t = timeouts(5000, 3000);
    t.answered('p', 1);
    expect(t.timeoutMs('p')).toBe(3000);
  });

  it(`remembers at most ${OFFLINE_TIMEOUT_PORTALS} portals, forgetting the least recently answered`, () => {
    const t = timeouts(1000, 30_000);
    for (let i = 0; i < 20; i += 1) t.answered('kept', 20);
    for (let i = 0; i < OFFLINE_TIMEOUT_PORTALS + 5; i += 1) {
      t.answered(`p${i}`, 20);
      if (i % 1000 === 0) t.answered('kept', 20);
    }
    expect(t.size).toBe(OFFLINE_TIMEOUT_PORTALS);
    expect(t.timeoutMs('kept')).toBe(1000);
    // The first portals were forgotten: they are back to the first-call wait.
    expect(t.timeoutMs('p0')).toBe(10_000);
  });

  it('gives a call expected to run long that much more time, and learns only the time beyond it', () => {
    const t = timeouts(1000, 30_000);
    for (let i = 0; i < 20; i += 1) t.answered('big', 100);
    expect(t.timeoutMs('big')).toBe(1000);
    expect(t.timeoutMs('big', 4000)).toBe(5000);
    expect(t.timeoutMs('big', 60_000)).toBe(30_000);
    expect(t.timeoutMs('new', 4000)).toBe(14_000);

    // Big pages answered in their expected time leave the wait of small calls where it was.
    for (let i = 0; i < 20; i += 1) t.answered('big', 4100, 4000);
    expect(t.timeoutMs('big')).toBe(1000);
  });
});
