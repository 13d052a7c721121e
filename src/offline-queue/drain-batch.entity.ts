import { Check, Column, Entity, Index, PrimaryColumn } from 'typeorm';

/**
 * A batch reserved by event.offline.get (clear=0). The row is committed in the same transaction
 * as the batch's events; it stays `committed` until Bitrix24 confirms the clear, so a restart
 * knows which process_ids still have to be cleared.
 */
@Entity({ name: 'drain_batches' })
@Check('ck_drain_batches_state', `"state" IN ('committed','cleared')`)
@Index('ix_drain_batches_uncleared', ['memberId'], { where: `"state" = 'committed'` })
@Index('ix_drain_batches_cleared_at', ['clearedAt'], { where: `"state" = 'cleared'` })
export class DrainBatchEntity {
  @PrimaryColumn({
    name: 'member_id',
    type: 'varchar',
    length: 64,
    primaryKeyConstraintName: 'pk_drain_batches',
  })
  memberId: string;

  @PrimaryColumn({
    name: 'process_id',
    type: 'varchar',
    length: 64,
    primaryKeyConstraintName: 'pk_drain_batches',
  })
  processId: string;

  @Column({ name: 'state', type: 'varchar', length: 16 })
  state: 'committed' | 'cleared';

  @Column({ name: 'event_count', type: 'integer' })
  eventCount: number;

  @Column({ name: 'committed_at', type: 'timestamptz', default: () => 'now()' })
  committedAt: Date;

  @Column({ name: 'cleared_at', type: 'timestamptz', nullable: true })
  clearedAt: Date | null;
}
