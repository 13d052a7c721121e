import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import type { OfflineEvent } from '../bitrix24/bitrix24.types';
import { InboxService } from '../inbox/inbox.service';
import { DrainLease, DrainLeaseService } from './drain-lease.service';

/**
 * What the database knows of a portal's drained batches: a page's events and its process_id are
 * committed in one transaction (under a re-checked lease) before Bitrix24 is ever asked to clear it.
 */
@Injectable()
export class DrainLedger {
  constructor(
    private readonly dataSource: DataSource,
    private readonly leases: DrainLeaseService,
    private readonly inbox: InboxService,
  ) {}

  /**
   * Commits one page: re-checks the lease, stores the rows (a row already stored is skipped) and,
   * for a reserved batch (clear=0), records its process_id as `committed`. Returns the new rows.
   */
  async commitPage(
    lease: DrainLease,
    processId: string | null,
    events: readonly OfflineEvent[],
  ): Promise<number> {
    const inserted = await this.dataSource.transaction(async (manager) => {
      await this.leases.confirm(manager, lease);
      const stored = await this.inbox.insertOfflineEvents(
        manager,
        lease.memberId,
        processId,
        events,
      );
      if (processId !== null) {
        await manager.query(
          `INSERT INTO drain_batches (member_id, process_id, state, event_count)
           VALUES ($1, $2, 'committed', $3)
           ON CONFLICT (member_id, process_id) DO UPDATE
             SET state = 'committed', cleared_at = NULL,
                 event_count = drain_batches.event_count + EXCLUDED.event_count`,
          [lease.memberId, processId, stored],
        );
      }
      return stored;
    });
    if (inserted > 0) this.inbox.eventsCommitted();
    return inserted;
  }

  /** Bitrix24 confirmed the clear of a committed batch. */
  async markCleared(memberId: string, processId: string): Promise<void> {
    await this.dataSource.query(
      `UPDATE drain_batches SET state = 'cleared', cleared_at = now()
       WHERE member_id = $1 AND process_id = $2 AND state = 'committed'`,
      [memberId, processId],
    );
  }

  /** Batches committed but not yet confirmed cleared (a crash or failure came in between). */
  async unclearedBatches(memberId: string): Promise<string[]> {
    const rows: { process_id: string }[] = await this.dataSource.query(
      `SELECT process_id FROM drain_batches WHERE member_id = $1 AND state = 'committed'
       ORDER BY committed_at`,
      [memberId],
    );
    return rows.map((row) => row.process_id);
  }
}
