import { Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import { DataSource } from 'typeorm';
import { AppConfig } from '../config/app-config';
import { AppLogger } from '../logging/app-logger';
import type { EventAttemptEntity } from './event-attempt.entity';
import { HandlerRegistry } from './handler-registry.service';
import type { InboxEvent } from './inbox-event';
import { InboxMetrics } from './inbox.metrics';
import { retryDelayMs } from './retry-policy';
import type { StoredEventEntity } from './stored-event.entity';

/** A handler that has not settled by then counts as failed (its promise is no longer awaited). */
export const HANDLER_TIMEOUT_MS = 60_000;
const MAX_ERROR_LENGTH = 2000;
/** The shortest claim, whatever the handlers: a dead worker's events wait this long at most. */
export const MIN_CLAIM_SECONDS = 300;
/** Claim time beyond the handlers themselves: loading the event, recording the run. */
export const CLAIM_MARGIN_SECONDS = 60;

/**
 * How long a claim must hold so that it outlives a live run of `handlerCount` handlers. They run
 * one after another, each cut off at HANDLER_TIMEOUT_MS, so the claim covers all of them plus a
 * margin; only a run whose process died is ever claimed again (a second, concurrent run of the
 * same event would otherwise start while the first one's handlers still work).
 */
export function claimSecondsFor(handlerCount: number): number {
  const handlersSeconds = Math.max(1, handlerCount) * Math.ceil(HANDLER_TIMEOUT_MS / 1000);
  return Math.max(MIN_CLAIM_SECONDS, handlersSeconds + CLAIM_MARGIN_SECONDS);
}

export type AttemptOutcome = EventAttemptEntity['outcome'];
export type AttemptTrigger = EventAttemptEntity['trigger'];

function describeFailure(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}

function withTimeout<T>(work: Promise<T>, timeoutMs: number, name: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${name} did not finish within ${timeoutMs} ms`)),
      timeoutMs,
    );
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Runs the handlers of one claimed event and records the run: the event's new status and one
 * event_attempts row, in one transaction. The event must have been claimed (its `attempts`
 * already counts this run), which is what fences a run whose claim expired.
 */
@Injectable()
export class EventProcessor {
  private readonly log: Logger;
  /** Event names already reported as having no handler (once per process, not per event). */
  private readonly unhandledEventNames = new Set<string>();

  constructor(
    private readonly dataSource: DataSource,
    private readonly registry: HandlerRegistry,
    private readonly config: AppConfig,
    private readonly metrics: InboxMetrics,
    appLogger: AppLogger,
  ) {
    this.log = appLogger.child('inbox');
  }

  /**
   * The claim any event needs: events are claimed before their handlers are looked at, so the
   * event with the most handlers sets it.
   */
  claimSeconds(): number {
    return claimSecondsFor(this.registry.mostHandlersOfOneEvent());
  }

  async process(event: StoredEventEntity, trigger: AttemptTrigger): Promise<AttemptOutcome> {
    const handlers = this.registry.handlersFor(event.eventName);
    const view: InboxEvent = {
      id: event.id,
      memberId: event.memberId,
      source: event.source,
      eventName: event.eventName,
      data: event.data,
      additional: event.additional,
      queueId: event.queueId,
      messageId: event.messageId,
      bitrixTimestamp: event.bitrixTimestamp,
      receivedAt: event.receivedAt,
      attempt: event.attempts,
      trigger,
    };
    const startedAt = new Date();
    let failure: string | null = null;
    // Handlers of one event run one after another; the first failure fails the whole run, and a
    // retry runs them all again (handlers are idempotent by contract).
    for (const handler of handlers) {
      try {
        await withTimeout(
          Promise.resolve().then(() => handler.run(view)),
          HANDLER_TIMEOUT_MS,
          handler.name,
        );
      } catch (error) {
        failure = `${handler.name}: ${describeFailure(error)}`.slice(0, MAX_ERROR_LENGTH);
        break;
      }
    }
    const finishedAt = new Date();
    const outcome: AttemptOutcome =
      failure === null
        ? 'processed'
        : event.attempts >= this.config.inbox.maxAttempts
          ? 'dead'
          : 'failed';
    const retryInSeconds =
      outcome === 'failed'
        ? retryDelayMs(event.attempts, this.config.inbox.retryBaseSeconds * 1000) / 1000
        : null;

    const current = await this.dataSource.transaction(async (manager) => {
      const [, updated]: [unknown, number] = await manager.query(
        `UPDATE stored_events
         SET status = $3::varchar,
             last_error = $4,
             next_attempt_at = CASE WHEN $5::float8 IS NULL THEN NULL
                                    ELSE now() + make_interval(secs => $5::float8) END,
             processed_at = CASE WHEN $3::varchar = 'processed' THEN now() ELSE processed_at END,
             claim_expires_at = NULL
         WHERE id = $1 AND attempts = $2`,
        [event.id, event.attempts, outcome, failure, retryInSeconds],
      );
      await manager.query(
        `INSERT INTO event_attempts
           (event_id, attempt, trigger, outcome, handlers, error, started_at, finished_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
        [
          event.id,
          event.attempts,
          trigger,
          outcome,
          handlers.map((handler) => handler.name),
          failure,
          startedAt,
          finishedAt,
        ],
      );
      return updated === 1;
    });

    this.metrics.handlerRuns.inc({ outcome, trigger });
    this.metrics.handlerDuration.observe(
      { outcome },
      (finishedAt.getTime() - startedAt.getTime()) / 1000,
    );
    if (!current) {
      this.log.warn(
        { memberId: event.memberId, eventId: event.id, attempt: event.attempts, outcome },
        'event was claimed again while its handlers ran; this run is recorded but did not set its status',
      );
    } else if (outcome === 'dead') {
      this.log.error(
        {
          memberId: event.memberId,
          eventId: event.id,
          eventName: event.eventName,
          attempts: event.attempts,
          error: failure,
        },
        'event is dead: handlers failed on every attempt',
      );
    } else if (outcome === 'failed') {
      this.log.warn(
        {
          memberId: event.memberId,
          eventId: event.id,
          eventName: event.eventName,
          attempt: event.attempts,
          retryInSeconds,
          error: failure,
        },
        'event handlers failed; will retry',
      );
    } else if (handlers.length === 0 && !this.unhandledEventNames.has(event.eventName)) {
      this.unhandledEventNames.add(event.eventName);
      this.log.info(
        { memberId: event.memberId, eventName: event.eventName },
        'no handler registered for this event: such events are marked processed',
      );
    }
    return outcome;
  }
}
