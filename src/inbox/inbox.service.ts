import { Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import { DataSource, EntityManager } from 'typeorm';
import type { OfflineEvent } from '../bitrix24/bitrix24.types';
import { AppLogger } from '../logging/app-logger';
import { EventProcessor } from './event-processor.service';
import { InboxWorker } from './inbox-worker.service';
import {
  EventInProgressError,
  EventNotDiscardableError,
  EventWaitingInLineError,
  InvalidEventIdError,
  StoredEventNotFoundError,
} from './inbox.errors';
import { InboxWakeup } from './inbox-wakeup.service';
import { lockLines, promoteLineHeads, UNFINISHED_STATUSES_SQL, waitsInLine } from './inbox-line';
import { orderingKeyFor } from './ordering-key';
import {
  quarantinedOfflineRow,
  StorableOfflineRow,
  storableJson,
  storableOfflineRow,
} from './storable-event';
import { EventStatus, StoredEventEntity } from './stored-event.entity';

export interface OnlineEventInput {
  memberId: string;
  eventName: string;
  data: unknown;
  bitrixTimestamp: Date | null;
  /** A digest of the delivery: a repeated POST of the same event is stored once. */
  dedupKey: string;
}

/** Purges delete in slices of this many rows, so one portal's history never holds one huge lock. */
const PURGE_SLICE = 5000;
const EVENT_ID = /^[1-9]\d{0,18}$/;
/** What the operator may discard: events that will not run again by themselves. */
const DISCARDABLE_STATUSES: readonly EventStatus[] = ['dead', 'unhandled'];

interface InsertedOfflineRow {
  queue_id: string;
  status: 'pending' | 'dead';
}

/**
 * SQLSTATE classes of a value the database will not take: 22 (data exception: bad text, a number
 * out of range, a string too long) and 54 (program limit exceeded: nesting too deep, row too big).
 */
function refusedRowContent(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code.startsWith('22') || code.startsWith('54'));
}

/**
 * The inbox: every Bitrix24 event we accepted, stored once, then handed to the vendor's handlers
 * by the InboxWorker. Storing is cheap and never runs a handler inline.
 */
@Injectable()
export class InboxService {
  private readonly log: Logger;

  constructor(
    private readonly dataSource: DataSource,
    private readonly worker: InboxWorker,
    private readonly processor: EventProcessor,
    private readonly wakeup: InboxWakeup,
    appLogger: AppLogger,
  ) {
    this.log = appLogger.child('inbox');
  }

  /**
   * Inserts one page of offline queue rows inside the caller's transaction (the drain commits them
   * together with their process_id). A row already stored (same portal and queue row ID) is
   * skipped. Returns how many rows were new. Call eventsCommitted() after the commit.
   *
   * No row's content can fail the page: rows are made storable first (see storableOfflineRow),
   * and should the database still refuse one, the page is stored row by row and that row goes in
   * dead with the reason, so the page commits whole and the drain moves on.
   */
  async insertOfflineEvents(
    manager: EntityManager,
    memberId: string,
    processId: string | null,
    events: readonly OfflineEvent[],
  ): Promise<number> {
    if (events.length === 0) return 0;
    const rows = events.map(storableOfflineRow);
    // Held until the drain commits: ids of each line follow commit order (see inbox-line.ts).
    await lockLines(
      manager,
      memberId,
      rows.map((row) => row.orderingKey),
    );
    let inserted: InsertedOfflineRow[];
    await manager.query('SAVEPOINT offline_page');
    try {
      inserted = await this.insertOfflineRows(manager, memberId, processId, rows);
    } catch (error) {
      if (!refusedRowContent(error)) throw error;
      await manager.query('ROLLBACK TO SAVEPOINT offline_page');
      inserted = await this.insertOfflineRowsOneByOne(manager, memberId, processId, rows);
    }
    await manager.query('RELEASE SAVEPOINT offline_page');
    this.reportAlteredRows(memberId, processId, rows, inserted);
    return inserted.length;
  }

  /** Each row under its own savepoint: one the database refuses is stored again, quarantined. */
  private async insertOfflineRowsOneByOne(
    manager: EntityManager,
    memberId: string,
    processId: string | null,
    rows: readonly StorableOfflineRow[],
  ): Promise<InsertedOfflineRow[]> {
    const inserted: InsertedOfflineRow[] = [];
    for (const row of rows) {
      await manager.query('SAVEPOINT offline_row');
      try {
        inserted.push(...(await this.insertOfflineRows(manager, memberId, processId, [row])));
      } catch (error) {
        if (!refusedRowContent(error)) throw error;
        await manager.query('ROLLBACK TO SAVEPOINT offline_row');
        const reason = `${String((error as { code?: unknown }).code)} ${(error as Error).message}`;
        // If even this is refused, the page fails as a whole: nothing of it is cleared.
        const quarantined = quarantinedOfflineRow(row, reason);
        inserted.push(
          ...(await this.insertOfflineRows(manager, memberId, processId, [quarantined])),
        );
      }
      await manager.query('RELEASE SAVEPOINT offline_row');
    }
    return inserted;
  }

  private async insertOfflineRows(
    manager: EntityManager,
    memberId: string,
    processId: string | null,
    rows: readonly StorableOfflineRow[],
  ): Promise<InsertedOfflineRow[]> {
    // One statement for the whole page: arrays unnested server-side, whatever the page size.
    // A row behind an unfinished event of its line (stored before, or earlier in this page)
    // waits with no due time; the head of its line is due now (see inbox-line.ts).
    return manager.query(
      `INSERT INTO stored_events
         (member_id, source, queue_id, message_id, process_id, event_name, ordering_key,
          data, additional, bitrix_timestamp, status, last_error, next_attempt_at)
       SELECT $1, 'offline', row.queue_id, row.message_id, $2, row.event_name, row.ordering_key,
              row.data::jsonb, row.additional::jsonb, row.bitrix_timestamp,
              CASE WHEN row.unfit IS NULL THEN 'pending' ELSE 'dead' END, row.unfit,
              CASE WHEN row.unfit IS NOT NULL THEN NULL
                   WHEN row.ordering_key IS NULL THEN now()
                   WHEN row.place_in_page > 1 THEN NULL
                   WHEN EXISTS (
                     SELECT 1 FROM stored_events p
                     WHERE p.member_id = $1 AND p.ordering_key = row.ordering_key
                       AND p.status IN ${UNFINISHED_STATUSES_SQL}) THEN NULL
                   ELSE now() END
       FROM (
         SELECT page.*,
                row_number() OVER (PARTITION BY page.ordering_key ORDER BY page.position)
                  AS place_in_page
         FROM unnest($3::bigint[], $4::varchar[], $5::varchar[], $6::varchar[], $7::text[],
                     $8::text[], $9::timestamptz[], $10::text[], $11::int[])
           AS page(queue_id, message_id, event_name, ordering_key, data, additional,
                   bitrix_timestamp, unfit, position)
         -- Rows stored before (a page read again) take no place in their line.
         WHERE NOT EXISTS (SELECT 1 FROM stored_events s
                           WHERE s.member_id = $1 AND s.queue_id = page.queue_id)) AS row
       ORDER BY row.position
       ON CONFLICT (member_id, queue_id) WHERE queue_id IS NOT NULL DO NOTHING
       RETURNING queue_id::text AS queue_id, status`,
      [
        memberId,
        processId,
        rows.map((row) => row.queueId),
        rows.map((row) => row.messageId),
        rows.map((row) => row.eventName),
        rows.map((row) => row.orderingKey),
        rows.map((row) => row.data),
        rows.map((row) => row.additional),
        rows.map((row) => row.bitrixTimestamp),
        rows.map((row) => row.unfit),
        rows.map((_, position) => position),
      ],
    );
  }

  /** Rows stored other than exactly as sent are worth an operator's look; each is logged once. */
  private reportAlteredRows(
    memberId: string,
    processId: string | null,
    rows: readonly StorableOfflineRow[],
    inserted: readonly InsertedOfflineRow[],
  ): void {
    const statusOf = new Map(inserted.map((row) => [row.queue_id, row.status]));
    const replaced = rows.filter(
      (row) => row.replacedCharacters > 0 && statusOf.get(row.queueId) === 'pending',
    );
    if (replaced.length > 0) {
      this.log.warn(
        {
          memberId,
          processId,
          rows: replaced.length,
          queueIds: replaced.map((row) => row.queueId),
          replacedCharacters: replaced.reduce((sum, row) => sum + row.replacedCharacters, 0),
        },
        'offline rows held characters Postgres cannot store (NUL, lone surrogates): stored with U+FFFD in their place',
      );
    }
    for (const row of rows) {
      if (statusOf.get(row.queueId) !== 'dead') continue;
      this.log.error(
        { memberId, processId, queueId: row.queueId, eventName: row.eventName },
        'offline row cannot go to its handlers as sent: stored dead (see its last error)',
      );
    }
  }

  /** Events were committed by someone else's transaction: let the worker pick them up now. */
  eventsCommitted(): void {
    this.announceStored();
  }

  /** This replica's worker wakes now; the others when the coalesced NOTIFY reaches them. */
  private announceStored(): void {
    this.worker.wake();
    this.wakeup.announce();
  }

  /** Stores one online event (verified by the webhook), once per dedup key. */
  async storeOnlineEvent(input: OnlineEventInput): Promise<{ stored: boolean }> {
    const eventName = input.eventName.toUpperCase();
    // A NUL or a lone surrogate in a form field would make Postgres refuse the event.
    const data = storableJson(input.data);
    const orderingKey = orderingKeyFor(eventName, data.value);
    const insert = (manager: EntityManager): Promise<{ id: string }[]> =>
      manager.query(
        `INSERT INTO stored_events
           (member_id, source, dedup_key, event_name, ordering_key, data, bitrix_timestamp,
            next_attempt_at)
         SELECT $1::varchar, 'online', $2::varchar, $3::varchar, $4::varchar, $5::jsonb, $6::timestamptz,
                CASE WHEN $4::varchar IS NOT NULL AND EXISTS (
                       SELECT 1 FROM stored_events p
                       WHERE p.member_id = $1::varchar AND p.ordering_key = $4::varchar
                         AND p.status IN ${UNFINISHED_STATUSES_SQL}) THEN NULL
                     ELSE now() END
         ON CONFLICT (member_id, dedup_key) WHERE dedup_key IS NOT NULL DO NOTHING
         RETURNING id`,
        [input.memberId, input.dedupKey, eventName, orderingKey, data.json, input.bitrixTimestamp],
      );
    // An event of an object takes its line's lock first, in a statement of its own, so the insert
    // that follows sees every event of the line committed before it (see inbox-line.ts).
    const rows =
      orderingKey === null
        ? await insert(this.dataSource.manager)
        : await this.dataSource.transaction(async (manager) => {
            await lockLines(manager, input.memberId, [orderingKey]);
            return insert(manager);
          });
    if (rows.length > 0) this.announceStored();
    return { stored: rows.length > 0 };
  }

  /**
   * Runs the event's handlers again, now, whatever its status; recorded as an attempt with
   * trigger 'replay'. A failed replay follows the normal retry policy (dead once out of attempts,
   * so a dead event replayed in vain stays dead and keeps holding its object's line).
   */
  async replay(eventId: string): Promise<StoredEventEntity> {
    if (!EVENT_ID.test(eventId)) throw new InvalidEventIdError();
    const repository = this.dataSource.getRepository(StoredEventEntity);
    const [claimed]: [{ id: string }[], number] = await this.dataSource.query(
      `UPDATE stored_events
       SET attempts = attempts + 1, claim_expires_at = now() + make_interval(secs => $2),
           run_token = nextval('stored_event_run_token_seq')
       WHERE id = $1 AND (claim_expires_at IS NULL OR claim_expires_at <= now())
         AND NOT ${waitsInLine('stored_events')}
       RETURNING id`,
      [eventId, this.processor.claimSeconds()],
    );
    if (claimed.length === 0) {
      const [row]: { waiting: boolean }[] = await this.dataSource.query(
        `SELECT ${waitsInLine('stored_events')} AS waiting FROM stored_events WHERE stored_events.id = $1`,
        [eventId],
      );
      if (!row) throw new StoredEventNotFoundError(eventId);
      if (row.waiting) throw new EventWaitingInLineError(eventId);
      throw new EventInProgressError(eventId);
    }
    const event = await repository.findOneByOrFail({ id: eventId });
    const outcome = await this.processor.process(event, 'replay');
    this.log.info(
      { memberId: event.memberId, eventId, eventName: event.eventName, outcome },
      'event replayed',
    );
    // A dead head of its line that now succeeded lets the object's later events go.
    this.worker.wake();
    return repository.findOneByOrFail({ id: eventId });
  }

  /**
   * The operator gives up on a dead or unhandled event: it becomes `discarded` (kept, with a
   * `discard` entry in its history) and no longer holds its object's later events.
   */
  async discard(eventId: string): Promise<StoredEventEntity> {
    if (!EVENT_ID.test(eventId)) throw new InvalidEventIdError();
    const discarded = await this.dataSource.transaction(async (manager) => {
      // The line's lock before the row's, as every writer of a line takes them.
      const [line]: { member_id: string; ordering_key: string | null }[] = await manager.query(
        `SELECT member_id, ordering_key FROM stored_events WHERE id = $1`,
        [eventId],
      );
      if (!line) throw new StoredEventNotFoundError(eventId);
      await lockLines(manager, line.member_id, [line.ordering_key]);
      const [row]: {
        status: EventStatus;
        running: boolean | null;
        attempts: number;
        member_id: string;
        ordering_key: string | null;
      }[] = await manager.query(
        `SELECT status, claim_expires_at > now() AS running, attempts, member_id, ordering_key
         FROM stored_events WHERE id = $1 FOR UPDATE`,
        [eventId],
      );
      if (!row) throw new StoredEventNotFoundError(eventId);
      if (!DISCARDABLE_STATUSES.includes(row.status)) {
        throw new EventNotDiscardableError(eventId, row.status);
      }
      // A replay of it is running: its outcome decides first.
      if (row.running) throw new EventInProgressError(eventId);
      await manager.query(
        `UPDATE stored_events
         SET status = 'discarded', next_attempt_at = NULL, claim_expires_at = NULL, run_token = NULL
         WHERE id = $1`,
        [eventId],
      );
      await manager.query(
        `INSERT INTO event_attempts (event_id, attempt, trigger, outcome, started_at, finished_at)
         VALUES ($1, $2, 'discard', 'discarded', now(), now())`,
        [eventId, row.attempts],
      );
      // The object's next event, if it waited behind this one, is due now.
      if (row.ordering_key !== null) {
        await promoteLineHeads(manager, [
          { memberId: row.member_id, orderingKey: row.ordering_key },
        ]);
      }
      return row;
    });
    this.log.info(
      {
        memberId: discarded.member_id,
        eventId,
        previousStatus: discarded.status,
        orderingKey: discarded.ordering_key,
      },
      'event discarded',
    );
    this.worker.wake();
    return this.dataSource.getRepository(StoredEventEntity).findOneByOrFail({ id: eventId });
  }

  /** Deletes every stored event of a portal (and, by cascade, their attempts). */
  async purgePortal(memberId: string): Promise<number> {
    let deleted = 0;
    for (;;) {
      const [, count]: [unknown, number] = await this.dataSource.query(
        `DELETE FROM stored_events WHERE id IN (
           SELECT id FROM stored_events WHERE member_id = $1 LIMIT $2)`,
        [memberId, PURGE_SLICE],
      );
      deleted += count;
      if (count < PURGE_SLICE) break;
    }
    this.log.info({ memberId, deleted }, 'stored events purged');
    return deleted;
  }
}
