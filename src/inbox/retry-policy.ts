/** No retry waits longer than this, however many attempts failed. */
export const MAX_RETRY_DELAY_MS = 60 * 60 * 1000;

/**
 * Delay before the next automatic attempt after `failedAttempts` failures: exponential from
 * `baseMs`, capped, with "equal jitter" (half fixed, half random) so events that failed together
 * do not retry in lockstep, yet every delay is at least as long as the previous one's floor.
 */
export function retryDelayMs(
  failedAttempts: number,
  baseMs: number,
  random: () => number = Math.random,
): number {
  const exponential = Math.min(baseMs * 2 ** Math.max(0, failedAttempts - 1), MAX_RETRY_DELAY_MS);
  return Math.round(exponential / 2 + random() * (exponential / 2));
}
