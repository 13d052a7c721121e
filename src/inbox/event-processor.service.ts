import { Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import { DataSource, EntityManager } from 'typeorm';
import { AppConfig } from '../config/app-config';
import { AppLogger } from '../logging/app-logger';
import type { EventAttemptEntity } from './event-attempt.entity';
import { HandlerRegistry, RegisteredHandler } from './handler-registry.service';
import type { InboxEvent } from './inbox-event';
import { Bitrix24Client } from '../bitrix24/bitrix24.client';
import { lockLines, promoteLineHead } from './inbox-line';
import { InboxMetrics } from './inbox.metrics';
import { retryDelayMs } from './retry-policy';
import type { StoredEventEntity } from './stored-event.entity';

const MAX_ERROR_LENGTH = 2000;
/** A claim lapses this long after its last renewal: a dead worker's events wait this long at most. */
export const CLAIM_LEASE_SECONDS = 30;
/** A live run renews its claim this often, so it never lapses while the handlers still work. */
export const CLAIM_RENEW_MS = 10_000;

/** What a run of the handlers ends in (a discard is the operator's, not a run's). */
export type AttemptOutcome = Exclude<EventAttemptEntity['outcome'], 'discarded'>;
export type AttemptTrigger = Exclude<EventAttemptEntity['trigger'], 'discard'>;

function describeFailure(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}

type Settled = { ok: true } | { ok: false; error: unknown };

function settle(work: Promise<unknown>): Promise<Settled> {
  return work.then(
    () => ({ ok: true }) as const,
    (error: unknown) => ({ ok: false, error }) as const,
  );
}

function delay(ms: number): { done: Promise<'timeout'>; cancel: () => void } {
  let timer: NodeJS.Timeout | undefined;
  const done = new Promise<'timeout'>(
    (resolve) => (timer = setTimeout(() => resolve('timeout'), ms)),
  );
  return { done, cancel: () => clearTimeout(timer) };
}

/** What the handlers did in one run. */
interface RunResult {
  failure: string | null;
  /** What each handler returned, in order (complete only when no handler failed). */
  results: unknown[];
  /** False when a handler outlived its timeout and the grace after it: it may still be running. */
  ended: boolean;
}

/**
 * Runs the handlers of one claimed event and records the run: the event's new status and one
 * event_attempts row, in one transaction. The event must have been claimed (its `attempts`
 * already counts this run, its `runToken` is this run's fencing token); every write of the run
 * checks that token, so a run whose claim was taken over changes nothing.
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
    private readonly bitrix24: Bitrix24Client,
    appLogger: AppLogger,
  ) {
    this.log = appLogger.child('inbox');
  }

  /** How long a claim holds before its next renewal is due; a live run renews it. */
  claimSeconds(): number {
    return CLAIM_LEASE_SECONDS;
  }

  /** The one place that builds what a handler receives from a stored event. */
  buildHandlerEvent(
    event: StoredEventEntity,
    trigger: AttemptTrigger,
    signal: AbortSignal,
  ): InboxEvent {
    return {
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
      signal,
      portal: this.bitrix24.forPortal(event.memberId),
    };
  }

  async process(event: StoredEventEntity, trigger: AttemptTrigger): Promise<AttemptOutcome> {
    const handlers = this.registry.handlersFor(event.eventName);
    const token = event.runToken;
    const controller = new AbortController();
    let fenced = false;
    const renewal = setInterval(() => {
      void this.renewClaim(event.id, token).then(
        (held) => {
          if (held || fenced) return;
          fenced = true;
          controller.abort(new Error('the claim on this event was taken over by another run'));
        },
        (error: unknown) =>
          this.log.warn({ err: error, eventId: event.id }, 'could not renew the claim on an event'),
      );
    }, CLAIM_RENEW_MS);
    const startedAt = new Date();
    let result: RunResult;
    try {
      result = await this.runHandlers(
        handlers,
        this.buildHandlerEvent(event, trigger, controller.signal),
        controller,
      );
    } finally {
      clearInterval(renewal);
    }
    const finishedAt = new Date();
    const { failure, ended } = result;
    // No handler: kept apart from processed, so a replica without the handler (a rolling deploy)
    // does not consume the event for good; a replay once the handler is deployed runs it.
    const outcome: AttemptOutcome =
      failure === null
        ? handlers.length === 0
          ? 'unhandled'
          : 'processed'
        : event.attempts >= this.config.inbox.maxAttempts
          ? 'dead'
          : 'failed';
    const retryInSeconds =
      outcome === 'failed'
        ? retryDelayMs(event.attempts, this.config.inbox.retryBaseSeconds * 1000) / 1000
        : null;

    const current = await this.dataSource.transaction(async (manager) => {
      const recorded = await this.recordRun(manager, {
        event,
        token,
        trigger,
        outcome,
        failure,
        retryInSeconds,
        ended,
        handlers: handlers.map((handler) => handler.name),
        startedAt,
        finishedAt,
      });
      if (recorded && outcome === 'processed') {
        for (const [index, handler] of handlers.entries()) {
          await handler.recordResult?.(manager, event, result.results[index]);
        }
      }
      return recorded;
    });
    if (current && outcome === 'processed') {
      for (const handler of handlers) handler.afterRecorded?.(event);
    }

    this.metrics.handlerRuns.inc({ outcome, trigger });
    this.metrics.handlerDuration.observe(
      { outcome },
      (finishedAt.getTime() - startedAt.getTime()) / 1000,
    );
    if (!current) {
      this.log.warn(
        { memberId: event.memberId, eventId: event.id, attempt: event.attempts, outcome },
        'the claim on this event was taken over while its handlers ran; this run recorded nothing',
      );
    } else if (outcome === 'dead') {
      this.log.error(
        {
          memberId: event.memberId,
          eventId: event.id,
          eventName: event.eventName,
          orderingKey: event.orderingKey,
          attempts: event.attempts,
          error: failure,
        },
        event.orderingKey === null
          ? 'event is dead: handlers failed on every attempt'
          : "event is dead: handlers failed on every attempt; its object's later events wait until it is replayed or discarded",
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
          handlerStillRunning: !ended,
        },
        'event handlers failed; will retry',
      );
    } else if (handlers.length === 0 && !this.unhandledEventNames.has(event.eventName)) {
      this.unhandledEventNames.add(event.eventName);
      this.log.info(
        { memberId: event.memberId, eventName: event.eventName },
        'no handler registered for this event: such events are marked unhandled (replay them once a handler is deployed)',
      );
    }
    return outcome;
  }

  /**
   * Handlers of one event run one after another; the first failure fails the whole run, and a
   * retry runs them all again (handlers are idempotent by contract). A handler past its timeout
   * is aborted (event.signal) and then given as long again, at least one claim lease, to really
   * end while the claim is still renewed; only then does the run end without it.
   */
  private async runHandlers(
    handlers: readonly RegisteredHandler[],
    view: InboxEvent,
    controller: AbortController,
  ): Promise<RunResult> {
    const timeoutMs = this.config.inbox.handlerTimeoutSeconds * 1000;
    const graceMs = Math.max(timeoutMs, CLAIM_LEASE_SECONDS * 1000);
    const results: unknown[] = [];
    for (const handler of handlers) {
      let returned: unknown;
      const running = settle(
        Promise.resolve()
          .then(() => handler.run(view))
          .then((value) => (returned = value)),
      );
      const limit = delay(timeoutMs);
      const settled = await Promise.race([running, limit.done]);
      limit.cancel();
      if (settled === 'timeout') {
        controller.abort(new Error(`${handler.name} did not finish within ${timeoutMs} ms`));
        const grace = delay(graceMs);
        const late = await Promise.race([running, grace.done]);
        grace.cancel();
        const failure = `${handler.name}: did not finish within ${timeoutMs} ms (aborted)`;
        return { failure, results, ended: late !== 'timeout' };
      }
      if (!settled.ok) {
        const failure = `${handler.name}: ${describeFailure(settled.error)}`;
        return { failure: failure.slice(0, MAX_ERROR_LENGTH), results, ended: true };
      }
      if (controller.signal.aborted) {
        // Fenced while this handler ran: the run stops here, and records nothing anyway.
        return { failure: `${handler.name}: the claim was taken over`, results, ended: true };
      }
      results.push(returned);
    }
    return { failure: null, results, ended: true };
  }

  /** Extends this run's claim; false once another run (or the sweep) took the event over. */
  private async renewClaim(eventId: string, token: string | null): Promise<boolean> {
    const [, updated]: [unknown, number] = await this.dataSource.query(
      `UPDATE stored_events SET claim_expires_at = now() + make_interval(secs => $3)
       WHERE id = $1 AND run_token = $2`,
      [eventId, token, CLAIM_LEASE_SECONDS],
    );
    return updated === 1;
  }

  /**
   * The run's one transaction: the event's new status and its attempt row, both only while this
   * run still holds the claim. Returns false (and writes nothing) for a fenced run. A handler
   * that may still be running keeps the claim until its lease lapses, so nothing else of the
   * event or its object starts before that.
   */
  private async recordRun(manager: EntityManager, run: RecordedRun): Promise<boolean> {
    // An event that leaves its line lets the next one go: under the line's lock (inbox-line.ts).
    const leftLine =
      run.outcome === 'processed' || run.outcome === 'unhandled' ? run.event.orderingKey : null;
    if (leftLine !== null) await lockLines(manager, run.event.memberId, [leftLine]);
    const [, updated]: [unknown, number] = await manager.query(
      `UPDATE stored_events
       SET status = $3::varchar,
           last_error = $4,
           next_attempt_at = CASE WHEN $5::float8 IS NULL THEN NULL
                                  ELSE GREATEST(now() + make_interval(secs => $5::float8),
                                                CASE WHEN $6 THEN now()
                                                     ELSE now() + make_interval(secs => $7) END)
                             END,
           processed_at = CASE WHEN $3::varchar = 'processed' THEN now() ELSE processed_at END,
           claim_expires_at = CASE WHEN $6 THEN NULL ELSE now() + make_interval(secs => $7) END
       WHERE id = $1 AND run_token = $2`,
      [
        run.event.id,
        run.token,
        run.outcome,
        run.failure,
        run.retryInSeconds,
        run.ended,
        CLAIM_LEASE_SECONDS,
      ],
    );
    if (updated !== 1) return false;
    if (leftLine !== null) await promoteLineHead(manager, run.event.memberId, leftLine);
    await manager.query(
      `INSERT INTO event_attempts
         (event_id, attempt, trigger, outcome, handlers, error, started_at, finished_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
      [
        run.event.id,
        run.event.attempts,
        run.trigger,
        run.outcome,
        run.handlers,
        run.failure,
        run.startedAt,
        run.finishedAt,
      ],
    );
    return true;
  }
}

interface RecordedRun {
  event: StoredEventEntity;
  token: string | null;
  trigger: AttemptTrigger;
  outcome: AttemptOutcome;
  failure: string | null;
  retryInSeconds: number | null;
  ended: boolean;
  handlers: string[];
  startedAt: Date;
  finishedAt: Date;
}
