import {
  BeforeApplicationShutdown,
  Injectable,
  OnApplicationBootstrap,
  OnModuleDestroy,
} from '@nestjs/common';
import type { Logger } from 'pino';
import { DataSource } from 'typeorm';
import { AppConfig } from '../config/app-config';
import { AppLogger } from '../logging/app-logger';
import { EventProcessor } from './event-processor.service';
import { runInOneRoundTrip, type Statement } from '../database/one-round-trip';
import { waitsInLine } from './inbox-line';
import { RunRecordQueue } from './run-record-queue';
import {
  storedEventColumns,
  StoredEventEntity,
  storedEventFromRow,
  StoredEventRow,
} from './stored-event.entity';

const ABANDONED_SWEEP_MS = 10_000;
const MAX_ERROR_BACKOFF_MS = 30_000;
/** On shutdown, running handlers get this long to finish; then the process goes anyway. */
const SHUTDOWN_GRACE_MS = 8000;
/** Ended runs recorded in one transaction at most. */
const RECORD_BATCH_MAX = 500;
/**
 * Ended runs not yet recorded at most: past this the worker claims nothing until recording
 * catches up, so claims (held by unrecorded runs) never run far ahead of the database.
 */
const RECORD_BACKLOG_MAX = 2 * RECORD_BATCH_MAX;

/** Run before CLAIM_DUE_SQL in its transaction: see InboxWorker.claimDue. */
export const CLAIM_PLANNER_SETTINGS_SQL = `SELECT set_config('enable_bitmapscan', 'off', true),
       set_config('enable_seqscan', 'off', true)`;

/**
 * Claims up to $1 due events for $2 seconds (attempts < $3), oldest due first, and returns them
 * whole. Only heads of their object's line are due (inbox-line.ts), so blocked events cost the
 * scan nothing; the line check still decides, and it also keeps one claim from taking two events
 * of one line (the later sees the earlier unfinished). SKIP LOCKED lets replicas claim side by side.
 * A claimed event is due again when its claim lapses (next_attempt_at moves with the claim): the
 * runs under way sit behind the due events in the index, so the next claim does not walk past
 * them, and a run lost with its process is picked up by the same walk once its claim is over.
 */
export const CLAIM_DUE_SQL = `UPDATE stored_events AS e
       SET attempts = e.attempts + 1, claim_expires_at = now() + make_interval(secs => $2),
           next_attempt_at = now() + make_interval(secs => $2),
           run_token = nextval('stored_event_run_token_seq')
       WHERE e.id IN (
         SELECT c.id FROM stored_events c
         WHERE c.status IN ('pending','failed')
           AND c.next_attempt_at <= now()
           AND (c.claim_expires_at IS NULL OR c.claim_expires_at <= now())
           AND c.attempts < $3
           AND NOT ${waitsInLine('c')}
         ORDER BY c.next_attempt_at, c.id
         LIMIT $1
         FOR UPDATE SKIP LOCKED)
       RETURNING ${storedEventColumns('e')}`;

/** What the worker runs to claim, in one round trip: the planner settings, then the claim. */
export function claimStatements(
  limit: number,
  claimSeconds: number,
  maxAttempts: number,
): Statement[] {
  return [
    { sql: CLAIM_PLANNER_SETTINGS_SQL, params: [] },
    { sql: CLAIM_DUE_SQL, params: [limit, claimSeconds, maxAttempts] },
  ];
}

/**
 * Claims due stored events (FOR UPDATE SKIP LOCKED, so replicas share the work), as many in one
 * statement as there are free slots, runs their handlers with bounded concurrency (at most
 * INBOX_CONCURRENCY handler runs at once) and records the ended runs in batches (RunRecordQueue). An event whose ordering key (one CRM object) has an earlier
 * unfinished (pending, failed) or dead event waits for it, so changes of one object are handled
 * in order and none is handled past a change that failed for good, until the operator acts.
 */
@Injectable()
export class InboxWorker
  implements OnApplicationBootstrap, OnModuleDestroy, BeforeApplicationShutdown
{
  private readonly log: Logger;
  /** Handler runs under way (a slot each); ended runs wait in `records` until written. */
  private readonly inFlight = new Set<Promise<void>>();
  private readonly records: RunRecordQueue;
  private loop: Promise<void> | undefined;
  private stopping = false;
  private stopRequestedAt = 0;
  private wakeUp: (() => void) | undefined;
  /** A wake() that came while the loop was busy: the next sleep returns at once. */
  private wakePending = false;
  private lastSweepAt = 0;

  constructor(
    private readonly dataSource: DataSource,
    private readonly processor: EventProcessor,
    private readonly config: AppConfig,
    appLogger: AppLogger,
  ) {
    this.log = appLogger.child('inbox');
    this.records = new RunRecordQueue(
      (runs) => this.processor.record(runs),
      (error, runs) => {
        for (const run of runs) {
          this.log.error(
            { err: error, memberId: run.event.memberId, eventId: run.event.id },
            'could not record a handler run; the event is retried after its claim expires',
          );
        }
      },
      () => this.wake(),
      RECORD_BATCH_MAX,
    );
  }

  onApplicationBootstrap(): void {
    this.loop = this.run();
  }

  /** New events were committed: look for due work now instead of at the next poll. */
  wake(): void {
    if (this.wakeUp) this.wakeUp();
    else this.wakePending = true;
  }

  onModuleDestroy(): void {
    this.stopping = true;
    this.stopRequestedAt = Date.now();
    this.wake();
  }

  async beforeApplicationShutdown(): Promise<void> {
    await this.loop;
    if (this.inFlight.size === 0 && this.records.size === 0) return;
    const remaining = Math.max(0, this.stopRequestedAt + SHUTDOWN_GRACE_MS - Date.now());
    let timer: NodeJS.Timeout | undefined;
    const settled = await Promise.race([
      Promise.allSettled([...this.inFlight])
        .then(() => this.records.drained())
        .then(() => true),
      new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), remaining))),
    ]);
    clearTimeout(timer);
    if (!settled) {
      this.log.warn(
        { running: this.inFlight.size },
        'handlers still running at shutdown; their events are retried after the claim expires',
      );
    }
  }

  private async run(): Promise<void> {
    const idlePollMs = this.config.inbox.pollIntervalMs;
    let consecutiveFailures = 0;
    while (!this.stopping) {
      let waitMs = idlePollMs;
      try {
        const free = this.config.inbox.concurrency - this.inFlight.size;
        if (free > 0 && this.records.size < RECORD_BACKLOG_MAX) {
          await this.sweepAbandoned();
          const claimed = await this.claimDue(free);
          for (const event of claimed) this.start(event);
          // A full claim means more may be due: go again as soon as a slot frees (or, with the
          // record backlog full, as soon as a batch is written).
          if (claimed.length === free) waitMs = idlePollMs * 5;
        }
        if (consecutiveFailures > 0) {
          this.log.info({ afterFailures: consecutiveFailures }, 'inbox worker recovered');
        }
        consecutiveFailures = 0;
      } catch (error) {
        consecutiveFailures += 1;
        if (consecutiveFailures === 1 || consecutiveFailures % 10 === 0) {
          this.log.error(
            { err: error, consecutiveFailures },
            'inbox worker cannot claim events; retrying',
          );
        }
        waitMs = Math.min(MAX_ERROR_BACKOFF_MS, idlePollMs * 2 ** consecutiveFailures);
      }
      if (!this.stopping) await this.sleep(waitMs);
    }
  }

  /** A slot is taken while the handlers run; the ended run is recorded with others. */
  private start(event: StoredEventEntity): void {
    const run = this.processor
      .run(event, 'automatic')
      .then((ended) => this.records.add(ended))
      .catch((error: unknown) => {
        this.log.error(
          { err: error, memberId: event.memberId, eventId: event.id },
          'a handler run failed outside its handlers; the event is retried after its claim expires',
        );
      })
      .finally(() => {
        this.inFlight.delete(run);
        this.wake();
      });
    this.inFlight.add(run);
  }

  /** Sleeps until the timeout or a wake() (new events, a freed slot), whichever comes first. */
  private async sleep(ms: number): Promise<void> {
    if (this.wakePending) {
      this.wakePending = false;
      return;
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wakeUp = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.wakeUp = undefined;
    this.wakePending = false;
  }

  /**
   * The claim must walk the due index in its order and stop after `limit` rows. Planned on
   * statistics older than a burst (a drain that just made 100,000 heads due; a table that grew
   * from nothing), Postgres expects a handful of due rows and picks a bitmap scan: every due row
   * is read, checked against its line and sorted before the first is taken, about a second per
   * claim at 100,000 due rows instead of a few milliseconds. Bitmap and sequential scans are
   * therefore off for this one statement (set_config local to its transaction).
   *
   * Settings and claim go in one round trip (runInOneRoundTrip: one implicit transaction) instead
   * of four (BEGIN, settings, claim, COMMIT). Claims run one at a time per worker, and while the
   * drain keeps the server's event loop and Postgres busy each round trip waits its turn: with four,
   * a claim took about 40 ms, four fifths of it waiting, and set the inbox's pace.
   */
  private async claimDue(limit: number): Promise<StoredEventEntity[]> {
    const results = await runInOneRoundTrip(
      this.dataSource,
      claimStatements(limit, this.processor.claimSeconds(), this.config.inbox.maxAttempts),
    );
    return (results[1] as StoredEventRow[]).map(storedEventFromRow);
  }

  /**
   * An event whose last allowed attempt never finished (its process died, maybe because of the
   * event itself) becomes dead instead of being claimed again and again: like any dead event, it
   * then holds its object's later events until the operator replays or discards it.
   */
  private async sweepAbandoned(): Promise<void> {
    if (Date.now() - this.lastSweepAt < ABANDONED_SWEEP_MS) return;
    this.lastSweepAt = Date.now();
    const rows: { id: string; member_id: string; ordering_key: string | null }[] =
      await this.dataSource.query(
        `WITH abandoned AS (
         UPDATE stored_events
         SET status = 'dead', next_attempt_at = NULL, claim_expires_at = NULL, run_token = NULL,
             last_error = 'the run of the last allowed attempt never finished (process stopped)'
         WHERE status IN ('pending','failed') AND attempts >= $1
           AND (claim_expires_at IS NULL OR claim_expires_at <= now())
         RETURNING id, member_id, ordering_key, attempts, last_error),
       recorded AS (
         INSERT INTO event_attempts (event_id, attempt, trigger, outcome, error, started_at, finished_at)
         SELECT id, attempts, 'automatic', 'dead', last_error, now(), now() FROM abandoned)
       SELECT id, member_id, ordering_key FROM abandoned`,
        [this.config.inbox.maxAttempts],
      );
    for (const row of rows) {
      this.log.error(
        { memberId: row.member_id, eventId: row.id, orderingKey: row.ordering_key },
        row.ordering_key === null
          ? 'event is dead: its last allowed attempt was abandoned'
          : "event is dead: its last allowed attempt was abandoned; its object's later events wait until it is replayed or discarded",
      );
    }
  }
}
