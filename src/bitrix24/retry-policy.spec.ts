import { Bitrix24ApiError } from './bitrix24-api.error';
import { classifyRestError } from './error-classification';
import { jitteredDelay, RetryPolicy } from './retry-policy';

function apiError(code: string, status = 503): Bitrix24ApiError {
  return new Bitrix24ApiError(code, '', status, 'crm.deal.list', classifyRestError(code, status));
}

describe('jitteredDelay', () => {
  it('doubles per retry up to the cap, keeping half of each step fixed and half random', () => {
    expect(jitteredDelay(1, 250, 8000, () => 0)).toBe(125);
    expect(jitteredDelay(1, 250, 8000, () => 1)).toBe(250);
    expect(jitteredDelay(3, 250, 8000, () => 0)).toBe(500);
    expect(jitteredDelay(3, 250, 8000, () => 1)).toBe(1000);
    expect(jitteredDelay(10, 250, 8000, () => 1)).toBe(8000);
    expect(jitteredDelay(10, 250, 8000, () => 0)).toBe(4000);
  });

  it('spreads callers that failed together', () => {
    const delays = new Set(
      Array.from({ length: 50 }, () => jitteredDelay(2, 250, 8000, Math.random)),
    );
    expect(delays.size).toBeGreaterThan(10);
  });
});

describe('RetryPolicy', () => {
  const policy = new RetryPolicy(() => 0.5);

  it('retries server faults, network failures and timeouts a bounded number of times', () => {
    for (const code of [
      'INTERNAL_SERVER_ERROR',
      'OVERLOAD_LIMIT',
      'NETWORK_ERROR',
      'REQUEST_TIMEOUT',
    ]) {
      const error = apiError(code, code.startsWith('N') || code.startsWith('R') ? 0 : 503);
      expect(policy.delayBeforeRetry(error, 1)).toBeGreaterThan(0);
      expect(policy.delayBeforeRetry(error, 4)).toBeGreaterThan(0);
      expect(policy.delayBeforeRetry(error, 5)).toBeNull();
    }
  });

  it('gives rate-limit refusals more tries than server faults', () => {
    const error = apiError('QUERY_LIMIT_EXCEEDED');
    expect(policy.delayBeforeRetry(error, 9)).toBeGreaterThan(0);
    expect(policy.delayBeforeRetry(error, 10)).toBeNull();
  });

  it('waits for the end of the operating-time window when Bitrix24 told us when it is, up to the cap', () => {
    const error = apiError('OPERATION_TIME_LIMIT', 429);
    expect(policy.delayBeforeRetry(error, 1, 3_000)).toBe(3_000);
    expect(policy.delayBeforeRetry(error, 1, 10 * 60_000)).toBe(5_000);
    expect(policy.delayBeforeRetry(error, 3, 1000)).toBeNull();
  });

  it('never retries auth, portal-gone or caller errors', () => {
    expect(policy.delayBeforeRetry(apiError('expired_token', 401), 1)).toBeNull();
    expect(policy.delayBeforeRetry(apiError('PORTAL_DELETED', 403), 1)).toBeNull();
    expect(policy.delayBeforeRetry(apiError('ERROR_ARGUMENT', 400), 1)).toBeNull();
  });
});
