import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsIn, IsISO8601, IsOptional, Matches, ValidateBy } from 'class-validator';
import { ATTEMPT_OUTCOMES, ATTEMPT_TRIGGERS } from '../../inbox/event-attempt.entity';
import {
  EVENT_SOURCES,
  EVENT_STATUSES,
  type EventSource,
  type EventStatus,
} from '../../inbox/stored-event.entity';
import { ROBOT_ANSWER_STATES, type RobotAnswerState } from '../../robots/robot-answer.entity';
import { PageQueryDto } from '../pagination/page-query.dto';
import { MEMBER_ID_PATTERN } from '../portals/admin-portal.dto';

/** Stored event ids are Postgres bigints, positive, written in decimal. */
export const EVENT_ID_PATTERN = /^[1-9][0-9]{0,18}$/;
const MAX_BIGINT = 9223372036854775807n;
/** A Bitrix24 event name, or a robot's runs: `ROBOT:<code>` (codes allow `-` too). */
const EVENT_NAME_PATTERN = /^(?:[A-Za-z0-9_.]{1,128}|ROBOT:[A-Za-z0-9_.-]{1,128})$/;
/** `robot`: runs of the app's robots (stored as `ROBOT:<code>`); `event`: everything else. */
export const EVENT_KINDS = ['event', 'robot'] as const;
export type EventKind = (typeof EVENT_KINDS)[number];
/**
 * A robot run's answer: `not_required` (the robot does not wait, use_subscription=N),
 * `waiting_for_run` (it waits, the handler has not succeeded yet), then the answer's own states.
 */
export const ROBOT_ANSWER_STATUSES = [
  'not_required',
  'waiting_for_run',
  ...ROBOT_ANSWER_STATES,
] as const;
export type RobotAnswerStatus = 'not_required' | 'waiting_for_run' | RobotAnswerState;
export const EVENT_ORDERS = ['desc', 'asc'] as const;
export type EventOrder = (typeof EVENT_ORDERS)[number];

export function isEventId(value: unknown): value is string {
  return typeof value === 'string' && EVENT_ID_PATTERN.test(value) && BigInt(value) <= MAX_BIGINT;
}

export class EventIdParamsDto {
  @ApiProperty({ description: 'Stored event id (decimal)', pattern: EVENT_ID_PATTERN.source })
  @ValidateBy({
    name: 'isEventId',
    validator: {
      validate: isEventId,
      defaultMessage: () => 'id must be a positive decimal integer (a stored event id)',
    },
  })
  id: string;
}

export class ListEventsQueryDto extends PageQueryDto {
  @ApiPropertyOptional({ pattern: MEMBER_ID_PATTERN.source })
  @IsOptional()
  @Matches(MEMBER_ID_PATTERN, { message: 'memberId must be 1-64 letters, digits, _ . or -' })
  memberId?: string;

  @ApiPropertyOptional({
    example: 'ONCRMDEALUPDATE',
    description:
      "Case-insensitive (event names are stored upper-case); a robot's runs are `ROBOT:<CODE>`",
  })
  @IsOptional()
  @Transform(({ value }: { value: unknown }) =>
    typeof value === 'string' ? value.toUpperCase() : value,
  )
  @Matches(EVENT_NAME_PATTERN, {
    message: 'eventName must be 1-128 letters, digits, _ or ., or ROBOT:<robot code>',
  })
  eventName?: string;

  @ApiPropertyOptional({
    enum: EVENT_KINDS,
    description: '`robot`: robot runs only; `event`: Bitrix24 events only; unset: both',
  })
  @IsOptional()
  @IsIn(EVENT_KINDS, { message: `kind must be one of ${EVENT_KINDS.join(', ')}` })
  kind?: EventKind;

  @ApiPropertyOptional({ enum: EVENT_STATUSES })
  @IsOptional()
  @IsIn(EVENT_STATUSES, { message: `status must be one of ${EVENT_STATUSES.join(', ')}` })
  status?: EventStatus;

  @ApiPropertyOptional({ enum: EVENT_SOURCES })
  @IsOptional()
  @IsIn(EVENT_SOURCES, { message: `source must be one of ${EVENT_SOURCES.join(', ')}` })
  source?: EventSource;

  @ApiPropertyOptional({
    format: 'date-time',
    description: 'ISO-8601; only events received at or after this moment',
  })
  @IsOptional()
  @IsISO8601({ strict: true }, { message: 'since must be an ISO-8601 date-time' })
  since?: string;

  @ApiPropertyOptional({
    format: 'date-time',
    description: 'ISO-8601; only events received before this moment',
  })
  @IsOptional()
  @IsISO8601({ strict: true }, { message: 'until must be an ISO-8601 date-time' })
  until?: string;

  @ApiPropertyOptional({
    enum: EVENT_ORDERS,
    default: 'desc',
    description: 'By id: `desc` newest first, `asc` oldest first',
  })
  @IsOptional()
  @IsIn(EVENT_ORDERS, { message: 'order must be desc or asc' })
  order: EventOrder = 'desc';
}

export class RobotAnswerDto {
  @ApiProperty({
    enum: ROBOT_ANSWER_STATUSES,
    description:
      '`not_required`: the robot does not wait for an answer. `waiting_for_run`: it waits, the ' +
      'handler has not succeeded yet. `pending`: recorded, to be sent. `sending`: a sender holds ' +
      'it. `sent`: Bitrix24 took it (or refused a resend after an earlier send may have arrived: ' +
      '`error` then starts with "already answered"). `too_late`: not sent, the robot had stopped ' +
      'waiting. `failed`: Bitrix24 refused it, or it was refused too many times.',
  })
  state: RobotAnswerStatus;

  @ApiProperty({ description: 'bizproc.event.send attempts so far' })
  attempts: number;

  @ApiProperty({
    type: String,
    format: 'date-time',
    nullable: true,
    description: 'When the robot stops waiting (ts + timeout_duration); null: no limit',
  })
  deadlineAt: string | null;

  @ApiProperty({ type: String, format: 'date-time', nullable: true })
  sentAt: string | null;

  @ApiProperty({ type: String, nullable: true, description: 'The last refusal' })
  error: string | null;
}

export class EventDto {
  @ApiProperty({ description: 'Decimal bigint' })
  id: string;

  @ApiProperty({ enum: EVENT_KINDS, description: "`robot`: a run of one of the app's robots" })
  kind: EventKind;

  @ApiProperty()
  memberId: string;

  @ApiProperty({ enum: EVENT_SOURCES })
  source: EventSource;

  @ApiProperty({
    type: String,
    nullable: true,
    description: "Bitrix24's offline queue row ID (offline events only)",
  })
  queueId: string | null;

  @ApiProperty({ type: String, nullable: true })
  messageId: string | null;

  @ApiProperty({ example: 'ONCRMDEALUPDATE' })
  eventName: string;

  @ApiProperty({
    type: 'object',
    additionalProperties: true,
    nullable: true,
    description: 'The event data as Bitrix24 sent it (credential fields are masked)',
  })
  data: unknown;

  @ApiProperty({ type: String, format: 'date-time', nullable: true })
  bitrixTimestamp: string | null;

  @ApiProperty({ type: String, format: 'date-time' })
  receivedAt: string;

  @ApiProperty({
    enum: EVENT_STATUSES,
    description:
      "`dead`: handlers failed on every attempt; it holds its object's later events until it is " +
      'replayed or discarded. `unhandled`: no handler was registered where it ran; a replay where ' +
      "one is runs it; it holds nothing up. `discarded`: the operator's discard of a dead or " +
      'unhandled event, kept for the record.',
  })
  status: EventStatus;

  @ApiProperty({ description: 'Handler runs so far' })
  attempts: number;

  @ApiProperty({ type: String, nullable: true })
  lastError: string | null;

  @ApiProperty({ type: String, format: 'date-time', nullable: true })
  nextAttemptAt: string | null;

  @ApiProperty({ type: String, format: 'date-time', nullable: true })
  processedAt: string | null;

  @ApiProperty({
    type: RobotAnswerDto,
    nullable: true,
    description: "A robot run's answer to Bitrix24; null for events",
  })
  robotAnswer: RobotAnswerDto | null;
}

export class EventPageDto {
  @ApiProperty({ type: [EventDto] })
  items: EventDto[];

  @ApiProperty({ type: String, nullable: true, description: 'null on the last page' })
  nextCursor: string | null;
}

export class EventAttemptDto {
  @ApiProperty()
  attempt: number;

  @ApiProperty({
    enum: ATTEMPT_TRIGGERS,
    description: "`discard`: the operator's discard, not a handler run (outcome `discarded`)",
  })
  trigger: (typeof ATTEMPT_TRIGGERS)[number];

  @ApiProperty({
    enum: ATTEMPT_OUTCOMES,
    description: '`unhandled`: no handler was registered for the event where it ran',
  })
  outcome: (typeof ATTEMPT_OUTCOMES)[number];

  @ApiProperty({
    type: [String],
    description: 'The handlers this run invoked (`Class.method`); empty when none is registered',
  })
  handlers: string[];

  @ApiProperty({ type: String, nullable: true })
  error: string | null;

  @ApiProperty({ type: String, format: 'date-time' })
  startedAt: string;

  @ApiProperty({ type: String, format: 'date-time' })
  finishedAt: string;
}

export class EventDetailDto extends EventDto {
  @ApiProperty({ type: String, nullable: true, description: 'The offline batch it came in' })
  processId: string | null;

  @ApiProperty({ type: String, nullable: true })
  orderingKey: string | null;

  @ApiProperty({ type: 'object', additionalProperties: true, nullable: true })
  additional: unknown;

  @ApiProperty({
    type: [EventAttemptDto],
    description: 'Processing history, oldest first (the latest 200 runs)',
  })
  history: EventAttemptDto[];
}
