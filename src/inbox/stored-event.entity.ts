import { Check, Column, Entity, Index, PrimaryGeneratedColumn } from 'typeorm';

export const EVENT_SOURCES = ['offline', 'online'] as const;
export type EventSource = (typeof EVENT_SOURCES)[number];
/**
 * `dead`: handlers failed on every allowed attempt; it holds its object's later events until the
 * operator replays or discards it. `unhandled`: no handler was registered when it ran (terminal,
 * replayable, does not hold its object). `discarded`: a dead or unhandled event the operator gave
 * up on, kept for the record.
 */
export const EVENT_STATUSES = [
  'pending',
  'processed',
  'failed',
  'dead',
  'unhandled',
  'discarded',
] as const;
export type EventStatus = (typeof EVENT_STATUSES)[number];

/**
 * One Bitrix24 event as received. An offline queue row is stored once per portal and queue row
 * ID (uq_stored_events_member_queue_id): that index is what makes drains idempotent.
 */
@Entity({ name: 'stored_events' })
@Check('ck_stored_events_source', `"source" IN ('offline','online')`)
@Check(
  'ck_stored_events_status',
  `"status" IN ('pending','processed','failed','dead','unhandled','discarded')`,
)
@Index('uq_stored_events_member_queue_id', ['memberId', 'queueId'], {
  unique: true,
  where: '"queue_id" IS NOT NULL',
})
@Index('uq_stored_events_member_dedup_key', ['memberId', 'dedupKey'], {
  unique: true,
  where: '"dedup_key" IS NOT NULL',
})
@Index('ix_stored_events_due', ['nextAttemptAt', 'id'], {
  where: `"status" IN ('pending','failed')`,
})
@Index('ix_stored_events_member_id', ['memberId', 'id'])
@Index('ix_stored_events_event_name', ['eventName', 'id'])
@Index('ix_stored_events_status', ['status', 'id'])
@Index('ix_stored_events_received_at', ['receivedAt'])
// Robot runs (a small share of the rows), listed by kind in the admin API.
@Index('ix_stored_events_robot_runs', ['id'], { where: `"event_name" LIKE 'ROBOT:%'` })
@Index('ix_stored_events_member_robot_runs', ['memberId', 'id'], {
  where: `"event_name" LIKE 'ROBOT:%'`,
})
@Index('ix_stored_events_ordering', ['memberId', 'orderingKey', 'id'], {
  where: `"status" IN ('pending','failed','dead') AND "ordering_key" IS NOT NULL`,
})
@Index('ix_stored_events_claimed', ['memberId', 'orderingKey'], {
  where: `"claim_expires_at" IS NOT NULL`,
})
// Finished events (processed, discarded, unhandled) in the order they finished, for retention (an
// expression index: migrations 1797480000000 and 1797500000000).
@Index('ix_stored_events_finished', { synchronize: false })
export class StoredEventEntity {
  @PrimaryGeneratedColumn({
    name: 'id',
    type: 'bigint',
    primaryKeyConstraintName: 'pk_stored_events',
  })
  id: string;

  @Column({ name: 'member_id', type: 'varchar', length: 64 })
  memberId: string;

  @Column({ name: 'source', type: 'varchar', length: 8 })
  source: EventSource;

  /** Bitrix24's offline queue row ID (offline events only). */
  @Column({ name: 'queue_id', type: 'bigint', nullable: true })
  queueId: string | null;

  @Column({ name: 'message_id', type: 'varchar', length: 64, nullable: true })
  messageId: string | null;

  /** The offline batch this row came in (offline events only). */
  @Column({ name: 'process_id', type: 'varchar', length: 64, nullable: true })
  processId: string | null;

  /** Online events: a digest of the delivery, so a repeated POST is stored once. */
  @Column({ name: 'dedup_key', type: 'varchar', length: 64, nullable: true })
  dedupKey: string | null;

  @Column({ name: 'event_name', type: 'varchar', length: 128 })
  eventName: string;

  /** Handlers of one ordering key (e.g. one deal) run in order. */
  @Column({ name: 'ordering_key', type: 'varchar', length: 200, nullable: true })
  orderingKey: string | null;

  @Column({ name: 'data', type: 'jsonb', nullable: true })
  data: unknown;

  @Column({ name: 'additional', type: 'jsonb', nullable: true })
  additional: unknown;

  @Column({ name: 'bitrix_timestamp', type: 'timestamptz', nullable: true })
  bitrixTimestamp: Date | null;

  @Column({ name: 'received_at', type: 'timestamptz', default: () => 'now()' })
  receivedAt: Date;

  @Column({ name: 'status', type: 'varchar', length: 16, default: 'pending' })
  status: EventStatus;

  @Column({ name: 'attempts', type: 'integer', default: 0 })
  attempts: number;

  @Column({ name: 'last_error', type: 'text', nullable: true })
  lastError: string | null;

  /**
   * When the event is due. NULL for an event that will not run by itself: dead, finished, or
   * waiting behind an earlier unfinished event of its object (see inbox-line.ts).
   */
  @Column({ name: 'next_attempt_at', type: 'timestamptz', nullable: true, default: () => 'now()' })
  nextAttemptAt: Date | null;

  @Column({ name: 'processed_at', type: 'timestamptz', nullable: true })
  processedAt: Date | null;

  /** While a worker runs the handlers: until when its claim holds (an abandoned run expires). */
  @Column({ name: 'claim_expires_at', type: 'timestamptz', nullable: true })
  claimExpiresAt: Date | null;

  /**
   * The fencing token of the run holding the claim: a new one (never reused) per claim; every
   * write of a run checks it, so a run whose claim was taken over changes nothing.
   */
  @Column({ name: 'run_token', type: 'bigint', nullable: true })
  runToken: string | null;
}

/** A stored_events row as Postgres returns it (bigints as text). */
export interface StoredEventRow {
  id: string;
  member_id: string;
  source: EventSource;
  queue_id: string | null;
  message_id: string | null;
  process_id: string | null;
  dedup_key: string | null;
  event_name: string;
  ordering_key: string | null;
  data: unknown;
  additional: unknown;
  bitrix_timestamp: Date | null;
  received_at: Date;
  status: EventStatus;
  attempts: number;
  last_error: string | null;
  next_attempt_at: Date | null;
  processed_at: Date | null;
  claim_expires_at: Date | null;
  run_token: string | null;
}

const STORED_EVENT_COLUMNS: readonly (keyof StoredEventRow)[] = [
  'id',
  'member_id',
  'source',
  'queue_id',
  'message_id',
  'process_id',
  'dedup_key',
  'event_name',
  'ordering_key',
  'data',
  'additional',
  'bitrix_timestamp',
  'received_at',
  'status',
  'attempts',
  'last_error',
  'next_attempt_at',
  'processed_at',
  'claim_expires_at',
  'run_token',
];

/** The select list of a whole StoredEventRow of table alias `alias`. */
export function storedEventColumns(alias: string): string {
  return STORED_EVENT_COLUMNS.map((column) => `${alias}.${column}`).join(', ');
}

/** A row read with storedEventColumns() (e.g. in a RETURNING list) as the entity. */
export function storedEventFromRow(row: StoredEventRow): StoredEventEntity {
  return Object.assign(new StoredEventEntity(), {
    id: String(row.id),
    memberId: row.member_id,
    source: row.source,
    queueId: row.queue_id === null ? null : String(row.queue_id),
    messageId: row.message_id,
    processId: row.process_id,
    dedupKey: row.dedup_key,
    eventName: row.event_name,
    orderingKey: row.ordering_key,
    data: row.data,
    additional: row.additional,
    bitrixTimestamp: row.bitrix_timestamp,
    receivedAt: row.received_at,
    status: row.status,
    attempts: row.attempts,
    lastError: row.last_error,
    nextAttemptAt: row.next_attempt_at,
    processedAt: row.processed_at,
    claimExpiresAt: row.claim_expires_at,
    runToken: row.run_token === null ? null : String(row.run_token),
  });
}
