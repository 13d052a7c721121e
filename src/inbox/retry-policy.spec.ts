import { MAX_RETRY_DELAY_MS, retryDelayMs } from './retry-policy';

describe('retryDelayMs', () => {
  it('doubles per failure between half and all of the exponential step', () => {
    expect(retryDelayMs(1, 1000, () => 0)).toBe(500);
    expect(retryDelayMs(1, 1000, () => 1)).toBe(1000);
    expect(retryDelayMs(2, 1000, () => 0)).toBe(1000);
    expect(retryDelayMs(3, 1000, () => 1)).toBe(4000);
  });

  it('never shortens: the floor of each delay is the ceiling of the previous one', () => {
    for (let failures = 1; failures < 10; failures += 1) {
      expect(retryDelayMs(failures + 1, 1000, () => 0)).toBeGreaterThanOrEqual(
        retryDelayMs(failures, 1000, () => 1),
      );
    }
  });

  it('is capped', () => {
    expect(retryDelayMs(60, 10_000, () => 1)).toBe(MAX_RETRY_DELAY_MS);
  });
});
