/** How a portal whose drain passes fail is retried. */

/** Failed passes in a row after which a portal shows as in trouble (admin API, metrics). */
export const TROUBLE_AFTER_FAILURES = 5;

/**
 * The wait before retrying a portal after its n-th failed pass in a row: the window
 * base × 2^(n−1), capped, of which the upper half is drawn at random (so replicas and portals that
 * failed together do not retry together, and the wait still grows with every failure).
 */
export function retryDelayMs(failures: number, baseMs: number, capMs: number): number {
  const window = Math.min(capMs, baseMs * 2 ** Math.min(Math.max(failures - 1, 0), 30));
  return Math.round(window / 2 + Math.random() * (window / 2));
}
