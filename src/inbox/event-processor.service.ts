import { Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import { DataSource } from 'typeorm';
import { AppConfig } from '../config/app-config';
import { AppLogger } from '../logging/app-logger';
import type { EventAttemptEntity } from './event-attempt.entity';
import { HandlerRegistry, RegisteredHandler } from './handler-registry.service';
import type { InboxEvent } from './inbox-event';
import { Bitrix24Client } from '../bitrix24/bitrix24.client';
import { lockLinesStatement, promoteLineHeadsStatement } from './inbox-line';
import { runInOneRoundTrip, runStatement, type Statement } from '../database/one-round-trip';
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
 * Runs the handlers of one claimed event, and records runs: each event's new status and one
 * event_attempts row per run, many runs in one transaction. The event must have been claimed (its `attempts`
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

  /** Runs the event's handlers and records the run at once (a replay; tests). */
  async process(event: StoredEventEntity, trigger: AttemptTrigger): Promise<AttemptOutcome> {
    const run = await this.run(event, trigger);
    await this.record([run]);
    return run.outcome;
  }

  /**
   * Runs the handlers of one claimed event and says what the run ended in; nothing is written
   * but claim renewals: record() writes the outcome. The claim is held (and renewed) while the
   * handlers run, and stays held until the run is recorded.
   */
  async run(event: StoredEventEntity, trigger: AttemptTrigger): Promise<CompletedRun> {
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
    const { failure } = result;
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
    return {
      event,
      token,
      trigger,
      outcome,
      failure,
      retryInSeconds:
        outcome === 'failed'
          ? retryDelayMs(event.attempts, this.config.inbox.retryBaseSeconds * 1000) / 1000
          : null,
      ended: result.ended,
      handlers,
      results: result.results,
      startedAt,
      finishedAt: new Date(),
    };
  }

  /**
   * Records ended runs: all of them in one transaction, whatever their outcomes. Should that
   * transaction fail (one run's robot answer refused, a deadlock), each run is recorded in a
   * transaction of its own, so one bad run costs the others nothing; a run that still cannot be
   * recorded keeps its claim and is run again once the claim lapses, like a run whose process
   * died. Throws only when a single run was given and could not be recorded.
   */
  async record(runs: readonly CompletedRun[]): Promise<void> {
    if (runs.length === 0) return;
    try {
      await this.recordTogether(runs);
      return;
    } catch (error) {
      if (runs.length === 1) throw error;
      this.log.warn(
        { err: error, runs: runs.length },
        'could not record a batch of handler runs; recording them one by one',
      );
    }
    for (const run of runs) {
      try {
        await this.recordTogether([run]);
      } catch (error) {
        this.log.error(
          { err: error, memberId: run.event.memberId, eventId: run.event.id },
          'could not record a handler run; the event is retried after its claim expires',
        );
      }
    }
  }

  /**
   * One transaction for the runs. Without a handler that writes in it (recordResult, robots),
   * the statements go in one round trip (runInOneRoundTrip): records run one batch at a time, and
   * beside a busy drain each round trip of a six-statement transaction waited its turn.
   */
  private async recordTogether(runs: readonly CompletedRun[]): Promise<void> {
    const statements = this.recordStatements(runs);
    const writesInTransaction = runs.some((run) =>
      run.handlers.some((handler) => handler.recordResult !== undefined),
    );
    let recorded: Set<string>;
    if (!writesInTransaction) {
      const results = await runInOneRoundTrip(this.dataSource, statements.list);
      recorded = idsOf(results[statements.updateAt] as { id: string }[]);
    } else {
      recorded = await this.dataSource.transaction(async (manager) => {
        let ids = new Set<string>();
        for (const [index, statement] of statements.list.entries()) {
          const rows = await runStatement(manager, statement);
          if (index === statements.updateAt) ids = idsOf(rows as { id: string }[]);
        }
        for (const run of runs) {
          if (run.outcome !== 'processed' || !ids.has(run.event.id)) continue;
          for (const [index, handler] of run.handlers.entries()) {
            await handler.recordResult?.(manager, run.event, run.results[index]);
          }
        }
        return ids;
      });
    }
    for (const run of runs) this.reportRun(run, recorded.has(run.event.id));
  }

  /** After the run's transaction: metrics, the log line it deserves, robots' answers. */
  private reportRun(run: CompletedRun, current: boolean): void {
    const { event, outcome, handlers, failure } = run;
    if (current && outcome === 'processed') {
      for (const handler of handlers) handler.afterRecorded?.(event);
    }
    this.metrics.handlerRuns.inc({ outcome, trigger: run.trigger });
    this.metrics.handlerDuration.observe(
      { outcome },
      (run.finishedAt.getTime() - run.startedAt.getTime()) / 1000,
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
          retryInSeconds: run.retryInSeconds,
          error: failure,
          handlerStillRunning: !run.ended,
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
      `UPDATE stored_events SET claim_expires_at = now() + make_interval(secs => $3),
         next_attempt_at = CASE WHEN next_attempt_at IS NULL THEN NULL
                                ELSE GREATEST(next_attempt_at, now() + make_interval(secs => $3)) END
       WHERE id = $1 AND run_token = $2`,
      [eventId, token, CLAIM_LEASE_SECONDS],
    );
    return updated === 1;
  }

  /**
   * The runs' writes, one statement each for all the runs, in one transaction: the lines' locks,
   * then every event's new status with one attempt row per run (one statement, each only while
   * its run still holds the claim: the UPDATE answers the ids of the runs that did, and a fenced
   * run writes nothing), then the due time of each line's next event. A handler that may still be
   * running keeps the claim until its lease lapses, so nothing else of the event or its object
   * starts before that. `updateAt` is the index of the statement that answers the ids.
   */
  private recordStatements(unordered: readonly CompletedRun[]): {
    list: Statement[];
    updateAt: number;
  } {
    // Rows in id order: two batches that touch the same rows lock them in the same order.
    const runs = [...unordered].sort((a, b) => compareIds(a.event.id, b.event.id));
    // An event that leaves its line lets the next one go: under the line's lock (inbox-line.ts).
    // A fenced run's line is promoted too, which changes nothing (promoteLineHeadsStatement).
    const leftLines = runs.flatMap((run) =>
      (run.outcome === 'processed' || run.outcome === 'unhandled') && run.event.orderingKey !== null
        ? [{ memberId: run.event.memberId, orderingKey: run.event.orderingKey }]
        : [],
    );
    const update: Statement = {
      sql: `WITH r AS (
         SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::varchar[], $4::text[], $5::float8[],
                              $6::boolean[])
           AS r(id, run_token, outcome, failure, retry_in_seconds, ended)),
       updated AS (
         UPDATE stored_events AS e
         SET status = r.outcome,
             last_error = r.failure,
             next_attempt_at = CASE WHEN r.retry_in_seconds IS NULL THEN NULL
                                    ELSE GREATEST(now() + make_interval(secs => r.retry_in_seconds),
                                                  CASE WHEN r.ended THEN now()
                                                       ELSE now() + make_interval(secs => $7::int) END)
                               END,
             processed_at = CASE WHEN r.outcome = 'processed' THEN now() ELSE e.processed_at END,
             claim_expires_at = CASE WHEN r.ended THEN NULL
                                     ELSE now() + make_interval(secs => $7::int) END
         FROM r
         WHERE e.id = r.id AND e.run_token = r.run_token
         RETURNING e.id),
       attempts AS (
         INSERT INTO event_attempts
           (event_id, attempt, trigger, outcome, handlers, error, started_at, finished_at)
         SELECT a.event_id, a.attempt, a.trigger, a.outcome, a.handlers, a.error, a.started_at,
                a.finished_at
         FROM jsonb_to_recordset($8::jsonb) AS a(event_id bigint, attempt integer, trigger varchar,
                outcome varchar, handlers text[], error text, started_at timestamptz,
                finished_at timestamptz)
         JOIN updated ON updated.id = a.event_id)
       SELECT updated.id::text AS id FROM updated`,
      params: [
        runs.map((run) => run.event.id),
        runs.map((run) => run.token),
        runs.map((run) => run.outcome),
        runs.map((run) => run.failure),
        runs.map((run) => run.retryInSeconds),
        runs.map((run) => run.ended),
        CLAIM_LEASE_SECONDS,
        JSON.stringify(
          runs.map((run) => ({
            event_id: run.event.id,
            attempt: run.event.attempts,
            trigger: run.trigger,
            outcome: run.outcome,
            handlers: run.handlers.map((handler) => handler.name),
            error: run.failure,
            started_at: run.startedAt,
            finished_at: run.finishedAt,
          })),
        ),
      ],
    };
    const lock = lockLinesStatement(leftLines);
    const promote = promoteLineHeadsStatement(leftLines);
    const list = [...(lock ? [lock] : []), update, ...(promote ? [promote] : [])];
    return { list, updateAt: lock ? 1 : 0 };
  }
}

function idsOf(rows: readonly { id: string }[]): Set<string> {
  return new Set(rows.map((row) => String(row.id)));
}

/** Compares two bigint ids given as decimal strings. */
function compareIds(a: string, b: string): number {
  return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
}

/** A run whose handlers ended, with all record() needs to write it. */
export interface CompletedRun {
  event: StoredEventEntity;
  /** The fencing token the run was claimed with. */
  token: string | null;
  trigger: AttemptTrigger;
  outcome: AttemptOutcome;
  failure: string | null;
  retryInSeconds: number | null;
  /** False when a handler may still be running: the claim is kept until its lease lapses. */
  ended: boolean;
  handlers: readonly RegisteredHandler[];
  /** What each handler returned, in order (complete only when no handler failed). */
  results: unknown[];
  startedAt: Date;
  finishedAt: Date;
}
