import type { DeliveryMode } from '../portals/portal-status';

export type DrainOutcome = 'drained' | 'busy' | 'portal_not_active' | 'failed';

/** What one drainPortal() pass did. */
export interface DrainReport {
  memberId: string;
  outcome: DrainOutcome;
  /** Queue rows taken from Bitrix24 and committed (already-stored rows included). */
  events: number;
  /** event.offline.get pages that returned rows. */
  pages: number;
  /** Reserved batches resumed or adopted before new work (left by a crash or a failed pass). */
  recoveredBatches: number;
  deliveryMode: DeliveryMode;
  durationMs: number;
  error?: string;
  /** After a failed pass: the wait before its retry (jittered, growing with each failure). */
  retryInMs?: number;
}
