import { Check, Column, Entity, Index, JoinColumn, OneToOne, PrimaryColumn } from 'typeorm';
import { StoredEventEntity } from '../inbox/stored-event.entity';

export const ROBOT_ANSWER_STATES = ['pending', 'sending', 'sent', 'too_late', 'failed'] as const;
export type RobotAnswerState = (typeof ROBOT_ANSWER_STATES)[number];

/**
 * The answer to one robot run (a stored event), written in the same transaction that records the
 * handler's successful run, at most once per run (its primary key). Sending claims it with a
 * conditional UPDATE (pending → sending), so two replicas or a replay never send it twice.
 */
@Entity({ name: 'robot_answers' })
@Check('ck_robot_answers_state', `"state" IN ('pending','sending','sent','too_late','failed')`)
@Index('ix_robot_answers_unsent', ['createdAt'], { where: `"state" IN ('pending','sending')` })
export class RobotAnswerEntity {
  @PrimaryColumn({ name: 'event_id', type: 'bigint', primaryKeyConstraintName: 'pk_robot_answers' })
  eventId: string;

  @OneToOne(() => StoredEventEntity, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'event_id', foreignKeyConstraintName: 'fk_robot_answers_event' })
  event?: StoredEventEntity;

  @Column({ name: 'state', type: 'varchar', length: 16 })
  state: RobotAnswerState;

  @Column({ name: 'return_values', type: 'jsonb', nullable: true })
  returnValues: unknown;

  @Column({ name: 'log_message', type: 'text', nullable: true })
  logMessage: string | null;

  /** When Bitrix24 stops waiting (ts + timeout_duration); null: it waits without limit. */
  @Column({ name: 'deadline_at', type: 'timestamptz', nullable: true })
  deadlineAt: Date | null;

  @Column({ name: 'attempts', type: 'integer', default: 0 })
  attempts: number;

  /** While a sender holds the claim; an abandoned 'sending' is taken over after this. */
  @Column({ name: 'claimed_until', type: 'timestamptz', nullable: true })
  claimedUntil: Date | null;

  /**
   * An earlier send may have reached Bitrix24 (its sender died mid-send, or its answer was lost):
   * a refusal of the resend then means the run was already answered.
   */
  @Column({ name: 'delivery_uncertain', type: 'boolean', default: false })
  deliveryUncertain: boolean;

  @Column({ name: 'created_at', type: 'timestamptz', default: () => 'now()' })
  createdAt: Date;

  @Column({ name: 'sent_at', type: 'timestamptz', nullable: true })
  sentAt: Date | null;

  @Column({ name: 'error', type: 'text', nullable: true })
  error: string | null;
}
