import { Column, Entity, PrimaryColumn } from 'typeorm';

/**
 * The example handler's own table: the latest copy of each changed deal, as crm.deal.get answered
 * it. A vendor's handler keeps its data in tables of its own like this one.
 */
@Entity({ name: 'example_deals' })
export class ExampleDealEntity {
  @PrimaryColumn({
    name: 'member_id',
    type: 'varchar',
    length: 64,
    primaryKeyConstraintName: 'pk_example_deals',
  })
  memberId: string;

  @PrimaryColumn({ name: 'deal_id', type: 'bigint', primaryKeyConstraintName: 'pk_example_deals' })
  dealId: string;

  @Column({ name: 'title', type: 'varchar', length: 255, nullable: true })
  title: string | null;

  @Column({ name: 'stage_id', type: 'varchar', length: 64, nullable: true })
  stageId: string | null;

  /** Every field crm.deal.get returned. */
  @Column({ name: 'fields', type: 'jsonb' })
  fields: Record<string, unknown>;

  /** The deal was deleted in Bitrix24 (ONCRMDEALDELETE, or crm.deal.get answered "Not found"). */
  @Column({ name: 'deleted', type: 'boolean', default: false })
  deleted: boolean;

  /** The stored event whose fetch wrote this copy. */
  @Column({ name: 'event_id', type: 'bigint' })
  eventId: string;

  @Column({ name: 'copied_at', type: 'timestamptz', default: () => 'now()' })
  copiedAt: Date;
}
