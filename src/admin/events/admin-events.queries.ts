import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { In, Repository } from 'typeorm';
import { EventAttemptEntity } from '../../inbox/event-attempt.entity';
import { StoredEventEntity } from '../../inbox/stored-event.entity';
import { RobotAnswerEntity } from '../../robots/robot-answer.entity';
import {
  isRobotEventName,
  ROBOT_EVENT_PREFIX,
  type StoredRobotForm,
} from '../../robots/robot-form';
import { EventNotFoundError, InvalidFilterError } from '../admin.errors';
import { KeysetCursor } from '../pagination/keyset-cursor';
import { Page, toPage } from '../pagination/page-query.dto';
import {
  isEventId,
  EventAttemptDto,
  EventDetailDto,
  EventDto,
  ListEventsQueryDto,
  RobotAnswerDto,
} from './admin-event.dto';
import { maskCredentials } from './credential-masking';

const HISTORY_LIMIT = 200;

const iso = (moment: Date | null): string | null => moment?.toISOString() ?? null;

/**
 * A literal, not a parameter, so the planner matches the partial indexes on robot runs
 * (ix_stored_events_robot_runs, ix_stored_events_member_robot_runs).
 */
const ROBOT_RUN = `event.eventName LIKE '${ROBOT_EVENT_PREFIX}%'`;

/** Postgres has no year 0 and JavaScript no year 10000: keep filters where both agree. */
const EARLIEST = Date.UTC(1970, 0, 1);
const LATEST = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

function instantOf(name: 'since' | 'until', value: string | undefined): Date | undefined {
  if (value === undefined) return undefined;
  const instant = new Date(value);
  if (Number.isNaN(instant.getTime())) {
    throw new InvalidFilterError(`${name} must be an ISO-8601 date-time`);
  }
  if (instant.getTime() < EARLIEST || instant.getTime() > LATEST) {
    throw new InvalidFilterError(`${name} must be between 1970 and 9999`);
  }
  return instant;
}

/** Read side of the admin API for stored events and their processing history. */
@Injectable()
export class AdminEventsQueries {
  constructor(
    @InjectRepository(StoredEventEntity) private readonly events: Repository<StoredEventEntity>,
    @InjectRepository(EventAttemptEntity)
    private readonly attempts: Repository<EventAttemptEntity>,
    @InjectRepository(RobotAnswerEntity)
    private readonly robotAnswers: Repository<RobotAnswerEntity>,
  ) {}

  /**
   * Keyset by id: a page never repeats or skips a row that existed when paging began, however
   * many events are stored meanwhile (new ones have higher ids).
   */
  async list(query: ListEventsQueryDto): Promise<Page<EventDto>> {
    const since = instantOf('since', query.since);
    const until = instantOf('until', query.until);
    if (since && until && since >= until) {
      throw new InvalidFilterError('since must be before until');
    }
    const cursor = new KeysetCursor(
      JSON.stringify([
        'events',
        query.memberId ?? null,
        query.eventName ?? null,
        query.status ?? null,
        query.source ?? null,
        query.kind ?? null,
        since?.toISOString() ?? null,
        until?.toISOString() ?? null,
        query.order,
      ]),
      // The pattern alone admits 19-digit ids beyond bigint, which Postgres would refuse (500).
      isEventId,
    );
    const after = query.cursor === undefined ? undefined : cursor.decode(query.cursor);
    const descending = query.order === 'desc';

    const builder = this.events
      .createQueryBuilder('event')
      .orderBy('event.id', descending ? 'DESC' : 'ASC')
      .limit(query.limit + 1);
    if (query.memberId)
      builder.andWhere('event.memberId = :memberId', { memberId: query.memberId });
    if (query.eventName)
      builder.andWhere('event.eventName = :eventName', { eventName: query.eventName });
    if (query.status) builder.andWhere('event.status = :status', { status: query.status });
    if (query.source) builder.andWhere('event.source = :source', { source: query.source });
    if (query.kind === 'robot') builder.andWhere(ROBOT_RUN);
    if (query.kind === 'event') builder.andWhere(`NOT (${ROBOT_RUN})`);
    if (since) builder.andWhere('event.receivedAt >= :since', { since });
    if (until) builder.andWhere('event.receivedAt < :until', { until });
    if (after !== undefined) {
      builder.andWhere(descending ? 'event.id < :after' : 'event.id > :after', { after });
    }
    const rows = await builder.getMany();
    const answers = await this.answersOf(rows);
    return toPage(
      rows,
      query.limit,
      (event) => event.id,
      (key) => cursor.encode(key),
      (event) => this.present(event, answers),
    );
  }

  async detail(id: string): Promise<EventDetailDto> {
    const event = await this.events.findOneBy({ id });
    if (!event) throw new EventNotFoundError(id);
    const answers = await this.answersOf([event]);
    const history = await this.attempts.find({
      where: { eventId: id },
      order: { id: 'DESC' },
      take: HISTORY_LIMIT,
    });
    return {
      ...this.present(event, answers),
      processId: event.processId,
      orderingKey: event.orderingKey,
      additional: maskCredentials(event.additional ?? null),
      history: history.reverse().map((attempt): EventAttemptDto => ({
        attempt: attempt.attempt,
        trigger: attempt.trigger,
        outcome: attempt.outcome,
        handlers: attempt.handlers,
        error: attempt.error,
        startedAt: attempt.startedAt.toISOString(),
        finishedAt: attempt.finishedAt.toISOString(),
      })),
    };
  }

  /** The answers of the robot runs among `events`, by primary key. */
  private async answersOf(events: StoredEventEntity[]): Promise<Map<string, RobotAnswerEntity>> {
    const ids = events.filter((event) => isRobotEventName(event.eventName)).map((e) => e.id);
    if (ids.length === 0) return new Map();
    const rows = await this.robotAnswers.findBy({ eventId: In(ids) });
    return new Map(rows.map((row) => [row.eventId, row]));
  }

  private robotAnswer(
    event: StoredEventEntity,
    answers: Map<string, RobotAnswerEntity>,
  ): RobotAnswerDto {
    const answer = answers.get(event.id);
    if (answer !== undefined) {
      return {
        state: answer.state,
        attempts: answer.attempts,
        deadlineAt: iso(answer.deadlineAt),
        sentAt: iso(answer.sentAt),
        error: answer.error,
      };
    }
    // The answer is recorded with the handler's first success; before that there is no row.
    const waits = (event.data as StoredRobotForm | null)?.use_subscription === 'Y';
    return {
      state: waits ? 'waiting_for_run' : 'not_required',
      attempts: 0,
      deadlineAt: null,
      sentAt: null,
      error: null,
    };
  }

  private present(event: StoredEventEntity, answers: Map<string, RobotAnswerEntity>): EventDto {
    const robot = isRobotEventName(event.eventName);
    return {
      id: event.id,
      kind: robot ? 'robot' : 'event',
      memberId: event.memberId,
      source: event.source,
      queueId: event.queueId,
      messageId: event.messageId,
      eventName: event.eventName,
      data: maskCredentials(event.data ?? null),
      bitrixTimestamp: iso(event.bitrixTimestamp),
      receivedAt: event.receivedAt.toISOString(),
      status: event.status,
      attempts: event.attempts,
      lastError: event.lastError,
      nextAttemptAt: iso(event.nextAttemptAt),
      processedAt: iso(event.processedAt),
      robotAnswer: robot ? this.robotAnswer(event, answers) : null,
    };
  }
}
