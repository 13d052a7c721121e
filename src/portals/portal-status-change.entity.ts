import {
  Column,
  CreateDateColumn,
  Entity,
  Index,
  JoinColumn,
  ManyToOne,
  PrimaryGeneratedColumn,
} from 'typeorm';
import { PortalEntity } from './portal.entity';
import type { PortalStatus } from './portal-status';

/** Every status transition, with its reason: the portal's audit trail. */
@Entity({ name: 'portal_status_changes' })
@Index('ix_portal_status_changes_member_id', ['memberId', 'id'])
export class PortalStatusChangeEntity {
  @PrimaryGeneratedColumn({
    name: 'id',
    type: 'bigint',
    primaryKeyConstraintName: 'pk_portal_status_changes',
  })
  id: string;

  @Column({ name: 'member_id', type: 'varchar', length: 64 })
  memberId: string;

  @ManyToOne(() => PortalEntity, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'member_id', foreignKeyConstraintName: 'fk_portal_status_changes_portal' })
  portal?: PortalEntity;

  @Column({ name: 'from_status', type: 'varchar', length: 32, nullable: true })
  fromStatus: PortalStatus | null;

  @Column({ name: 'to_status', type: 'varchar', length: 32 })
  toStatus: PortalStatus;

  @Column({ name: 'reason', type: 'varchar', length: 500 })
  reason: string;

  @CreateDateColumn({ name: 'changed_at', type: 'timestamptz' })
  changedAt: Date;
}
