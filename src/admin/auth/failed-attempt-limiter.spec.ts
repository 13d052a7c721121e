import { FailedAttemptLimiter } from './failed-attempt-limiter';

describe('FailedAttemptLimiter', () => {
  let now: number;
  const clock = (): number => now;

  beforeEach(() => {
    now = 1_000_000;
  });

  it('blocks an address once it reaches the limit, until its window ends', () => {
    const limiter = new FailedAttemptLimiter(3, 60_000, 100, clock);
    expect(limiter.recordFailure('10.0.0.1')).toBe(1);
    now += 1000;
    limiter.recordFailure('10.0.0.1');
    expect(limiter.blockedForMs('10.0.0.1')).toBe(0);
    limiter.recordFailure('10.0.0.1');
    expect(limiter.blockedForMs('10.0.0.1')).toBe(59_000);
    now += 58_999;
    expect(limiter.blockedForMs('10.0.0.1')).toBe(1);
    now += 1;
    expect(limiter.blockedForMs('10.0.0.1')).toBe(0);
    expect(limiter.recordFailure('10.0.0.1')).toBe(1);
  });

  it('counts each address on its own', () => {
    const limiter = new FailedAttemptLimiter(1, 60_000, 100, clock);
    limiter.recordFailure('10.0.0.1');
    expect(limiter.blockedForMs('10.0.0.1')).toBeGreaterThan(0);
    expect(limiter.blockedForMs('10.0.0.2')).toBe(0);
  });

  it('remembers at most maxTracked addresses, forgetting expired then oldest windows', () => {
    const limiter = new FailedAttemptLimiter(1, 60_000, 3, clock);
    limiter.recordFailure('a');
    now += 30_000;
    limiter.recordFailure('b');
    limiter.recordFailure('c');
    expect(limiter.trackedAddresses).toBe(3);
    limiter.recordFailure('d');
    expect(limiter.trackedAddresses).toBe(3);
    expect(limiter.blockedForMs('a')).toBe(0);
    expect(limiter.blockedForMs('d')).toBeGreaterThan(0);
    now += 31_000;
    limiter.recordFailure('e');
    // a and b expired by now; c and d are still in their windows.
    expect(limiter.trackedAddresses).toBe(3);
    expect(limiter.blockedForMs('d')).toBeGreaterThan(0);
  });
});
