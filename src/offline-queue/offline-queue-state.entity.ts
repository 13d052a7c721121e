import { Column, Entity, PrimaryColumn } from 'typeorm';

/**
 * Per-portal drain state: the drain lease (holder, fencing token, expiry) and the last drain's
 * outcome. Every commit of a drain re-checks the fencing token under a row lock, so a holder that
 * lost its lease can no longer commit.
 */
@Entity({ name: 'offline_queue_states' })
export class OfflineQueueStateEntity {
  @PrimaryColumn({
    name: 'member_id',
    type: 'varchar',
    length: 64,
    primaryKeyConstraintName: 'pk_offline_queue_states',
  })
  memberId: string;

  @Column({ name: 'lease_holder', type: 'varchar', length: 128, nullable: true })
  leaseHolder: string | null;

  @Column({ name: 'lease_token', type: 'bigint', default: 0 })
  leaseToken: string;

  @Column({ name: 'lease_expires_at', type: 'timestamptz', nullable: true })
  leaseExpiresAt: Date | null;

  @Column({ name: 'drain_requested_at', type: 'timestamptz', nullable: true })
  drainRequestedAt: Date | null;

  @Column({ name: 'last_drain_started_at', type: 'timestamptz', nullable: true })
  lastDrainStartedAt: Date | null;

  @Column({ name: 'last_drain_finished_at', type: 'timestamptz', nullable: true })
  lastDrainFinishedAt: Date | null;

  @Column({ name: 'last_drain_outcome', type: 'varchar', length: 32, nullable: true })
  lastDrainOutcome: string | null;

  @Column({ name: 'last_drain_error', type: 'varchar', length: 1000, nullable: true })
  lastDrainError: string | null;

  @Column({ name: 'last_drain_events', type: 'integer', default: 0 })
  lastDrainEvents: number;

  /** When event.offline.list was last searched for reserved batches we do not know. */
  @Column({ name: 'last_adoption_check_at', type: 'timestamptz', nullable: true })
  lastAdoptionCheckAt: Date | null;

  @Column({ name: 'total_drained_events', type: 'bigint', default: 0 })
  totalDrainedEvents: string;

  /** Drain passes in a row that failed; 0 after a pass that did not fail. */
  @Column({ name: 'consecutive_failures', type: 'integer', default: 0 })
  consecutiveFailures: number;

  /** When the retry of a failed pass is due (null: no retry pending). */
  @Column({ name: 'next_attempt_at', type: 'timestamptz', nullable: true })
  nextAttemptAt: Date | null;

  /** The error of the last failed pass, kept until a pass succeeds. */
  @Column({ name: 'last_error', type: 'varchar', length: 1000, nullable: true })
  lastError: string | null;
}
