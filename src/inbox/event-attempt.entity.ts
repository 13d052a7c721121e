import {
  Check,
  Column,
  Entity,
  Index,
  JoinColumn,
  ManyToOne,
  PrimaryGeneratedColumn,
} from 'typeorm';
import { StoredEventEntity } from './stored-event.entity';

export const ATTEMPT_TRIGGERS = ['automatic', 'replay', 'discard'] as const;
export const ATTEMPT_OUTCOMES = ['processed', 'failed', 'dead', 'unhandled', 'discarded'] as const;

/**
 * The processing history of a stored event: one row per handler run, replays included, and one
 * for the operator's discard (trigger `discard`, outcome `discarded`: no handler ran).
 */
@Entity({ name: 'event_attempts' })
@Check(
  'ck_event_attempts_outcome',
  `"outcome" IN ('processed','failed','dead','unhandled','discarded')`,
)
@Check('ck_event_attempts_trigger', `"trigger" IN ('automatic','replay','discard')`)
@Index('ix_event_attempts_event_id', ['eventId', 'id'])
export class EventAttemptEntity {
  @PrimaryGeneratedColumn({
    name: 'id',
    type: 'bigint',
    primaryKeyConstraintName: 'pk_event_attempts',
  })
  id: string;

  @Column({ name: 'event_id', type: 'bigint' })
  eventId: string;

  @ManyToOne(() => StoredEventEntity, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'event_id', foreignKeyConstraintName: 'fk_event_attempts_event' })
  event?: StoredEventEntity;

  @Column({ name: 'attempt', type: 'integer' })
  attempt: number;

  @Column({ name: 'trigger', type: 'varchar', length: 16 })
  trigger: (typeof ATTEMPT_TRIGGERS)[number];

  @Column({ name: 'outcome', type: 'varchar', length: 16 })
  outcome: (typeof ATTEMPT_OUTCOMES)[number];

  /** The handlers this run invoked (`Class.method`); empty when none is registered for the event. */
  @Column({ name: 'handlers', type: 'text', array: true, default: () => `'{}'` })
  handlers: string[];

  @Column({ name: 'error', type: 'text', nullable: true })
  error: string | null;

  @Column({ name: 'started_at', type: 'timestamptz' })
  startedAt: Date;

  @Column({ name: 'finished_at', type: 'timestamptz' })
  finishedAt: Date;
}
