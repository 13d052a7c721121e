import type { Bitrix24ApiError } from './bitrix24-api.error';

interface Backoff {
  /** Tries in all, the first included. */
  readonly maxAttempts: number;
  readonly baseMs: number;
  readonly capMs: number;
}

/**
 * Refusals by the rate limiter are expected under load and cost nothing on Bitrix24's side, so they
 * get more tries; the bucket itself already slows the next ones down.
 */
const QUERY_LIMIT: Backoff = { maxAttempts: 10, baseMs: 250, capMs: 5_000 };
/**
 * The method's operating-time window is ten minutes long: a few slower tries in case it is about
 * to let go of its oldest minute, then the caller decides (a drain simply comes back later).
 */
const OPERATION_TIME_LIMIT: Backoff = { maxAttempts: 3, baseMs: 1_000, capMs: 5_000 };
/** 5xx, overload, network failures and timeouts. */
const SERVER_FAULT: Backoff = { maxAttempts: 5, baseMs: 250, capMs: 8_000 };

function backoffFor(error: Bitrix24ApiError): Backoff {
  if (error.bitrixCode === 'QUERY_LIMIT_EXCEEDED') return QUERY_LIMIT;
  if (error.bitrixCode === 'OPERATION_TIME_LIMIT') return OPERATION_TIME_LIMIT;
  return SERVER_FAULT;
}

/**
 * Capped exponential backoff with "equal jitter": half the step is fixed, half random, so callers
 * that failed together do not come back together.
 */
export function jitteredDelay(
  retry: number,
  baseMs: number,
  capMs: number,
  random: () => number,
): number {
  const step = Math.min(capMs, baseMs * 2 ** (retry - 1));
  return Math.round(step / 2 + (random() * step) / 2);
}

/** Decides whether and when a retryable failure is tried again. */
export class RetryPolicy {
  constructor(private readonly random: () => number = Math.random) {}

  /**
   * The pause before the next try, or null to give up. `attempts` counts the tries made so far;
   * `earliestMs` is a lower bound from Bitrix24 (the end of an operating-time window), honoured up
   * to the cap.
   */
  delayBeforeRetry(error: Bitrix24ApiError, attempts: number, earliestMs = 0): number | null {
    if (error.category !== 'retryable') return null;
    const backoff = backoffFor(error);
    if (attempts >= backoff.maxAttempts) return null;
    const delay = jitteredDelay(attempts, backoff.baseMs, backoff.capMs, this.random);
    return Math.max(delay, Math.min(earliestMs, backoff.capMs));
  }
}
