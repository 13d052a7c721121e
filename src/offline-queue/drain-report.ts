import type { DeliveryMode } from '../portals/portal-status';

/**
 * `deferred`: the pass stopped before the portal's operating-time limit (or Bitrix24 answered
 * OPERATION_TIME_LIMIT); everything taken was committed and cleared, and the next pass is due after
 * the window's reset (`retryInMs`).
 */
export type DrainOutcome = 'drained' | 'deferred' | 'busy' | 'portal_not_active' | 'failed';

/** What one drainPortal() pass did. */
export interface DrainReport {
  memberId: string;
  outcome: DrainOutcome;
  /** Queue rows taken from Bitrix24 and committed (already-stored rows included). */
  events: number;
  /** event.offline.get pages that returned rows. */
  pages: number;
  /** Rows in the largest of them (pages grow beyond DRAIN_PAGE_SIZE on a backlog). */
  largestPage: number;
  /** Reserved batches resumed or adopted before new work (left by a crash or a failed pass). */
  recoveredBatches: number;
  deliveryMode: DeliveryMode;
  durationMs: number;
  error?: string;
  /**
   * After a failed pass: the wait before its retry (jittered, growing with each failure). After a
   * deferred one: the wait until the operating-time window lets go (plus a second).
   */
  retryInMs?: number;
  /**
   * The pass gave its drain slot up with rows still queued (it had run DRAIN_PASS_SLICE_SECONDS
   * while other portals waited for a slot): everything it took is committed and cleared, and the
   * portal queues again behind them.
   */
  yielded?: boolean;
}
