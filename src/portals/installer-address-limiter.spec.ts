import { InstallerAddressLimiter } from './installer-address-limiter';

describe('InstallerAddressLimiter', () => {
  let now: number;
  const clock = (): number => now;

  beforeEach(() => {
    now = 1_000_000;
  });

  it('allows perMinute attempts at once, then says when the next one is free', () => {
    const limiter = new InstallerAddressLimiter(3, 100, clock);

    expect([1, 2, 3].map(() => limiter.tryTake('10.0.0.1'))).toEqual([0, 0, 0]);
    expect(limiter.tryTake('10.0.0.1')).toBe(20_000);
    now += 5_000;
    expect(limiter.tryTake('10.0.0.1')).toBe(15_000);
    now += 15_000;
    expect(limiter.tryTake('10.0.0.1')).toBe(0);
    expect(limiter.tryTake('10.0.0.1')).toBe(20_000);
  });

  it('counts each address on its own', () => {
    const limiter = new InstallerAddressLimiter(1, 100, clock);

    expect(limiter.tryTake('10.0.0.1')).toBe(0);
    expect(limiter.tryTake('10.0.0.1')).toBeGreaterThan(0);
    expect(limiter.tryTake('10.0.0.2')).toBe(0);
  });

  it('does not count attempts that were given back, and forgets an address whose bucket is full again', () => {
    const limiter = new InstallerAddressLimiter(2, 100, clock);

    for (let attempt = 0; attempt < 10; attempt++) {
      expect(limiter.tryTake('10.0.0.1')).toBe(0);
      limiter.giveBack('10.0.0.1');
    }
    expect(limiter.trackedAddresses).toBe(0);
    limiter.tryTake('10.0.0.1');
    limiter.tryTake('10.0.0.1');
    limiter.giveBack('10.0.0.1');
    expect(limiter.tryTake('10.0.0.1')).toBe(0);
    expect(limiter.tryTake('10.0.0.1')).toBeGreaterThan(0);
  });

  it('never holds more than a full bucket, however long an address stays away', () => {
    const limiter = new InstallerAddressLimiter(2, 100, clock);
    limiter.tryTake('10.0.0.1');
    now += 3_600_000;

    expect([1, 2, 3].map(() => limiter.tryTake('10.0.0.1') === 0)).toEqual([true, true, false]);
  });

  it('remembers at most maxTracked addresses, forgetting the least recently used', () => {
    const limiter = new InstallerAddressLimiter(1, 3, clock);
    for (const address of ['a', 'b', 'c']) limiter.tryTake(address);
    expect(limiter.tryTake('a')).toBeGreaterThan(0);

    limiter.tryTake('d');

    expect(limiter.trackedAddresses).toBe(3);
    // 'b' was the least recently used: forgotten, it starts again with a full bucket.
    expect(limiter.tryTake('b')).toBe(0);
    expect(limiter.tryTake('d')).toBeGreaterThan(0);
  });
});
