import { Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import { DataSource, EntityManager } from 'typeorm';
import type { OfflineEvent } from '../bitrix24/bitrix24.types';
import { AppLogger } from '../logging/app-logger';
import { EventProcessor } from './event-processor.service';
import { CLAIM_SECONDS, InboxWorker } from './inbox-worker.service';
import {
  EventInProgressError,
  InvalidEventIdError,
  StoredEventNotFoundError,
} from './inbox.errors';
import { orderingKeyFor } from './ordering-key';
import { StoredEventEntity } from './stored-event.entity';

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

function toTimestamp(value: string): Date | null {
  const parsed = new Date(value);
  return Number.isNaN(parsed.getTime()) ? null : parsed;
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
    appLogger: AppLogger,
  ) {
    this.log = appLogger.child('inbox');
  }

  /**
   * Inserts one page of offline queue rows inside the caller's transaction (the drain commits them
   * together with their process_id). A row already stored (same portal and queue row ID) is
   * skipped. Returns how many rows were new. Call eventsCommitted() after the commit.
   */
  async insertOfflineEvents(
    manager: EntityManager,
    memberId: string,
    processId: string | null,
    events: readonly OfflineEvent[],
  ): Promise<number> {
    if (events.length === 0) return 0;
    // One statement for the whole page: arrays unnested server-side, whatever the page size.
    const inserted: { id: string }[] = await manager.query(
      `INSERT INTO stored_events
         (member_id, source, queue_id, message_id, process_id, event_name, ordering_key,
          data, additional, bitrix_timestamp)
       SELECT $1, 'offline', row.queue_id, row.message_id, $2, row.event_name, row.ordering_key,
              row.data::jsonb, row.additional::jsonb, row.bitrix_timestamp
       FROM unnest($3::bigint[], $4::varchar[], $5::varchar[], $6::varchar[], $7::text[],
                   $8::text[], $9::timestamptz[], $10::int[])
         AS row(queue_id, message_id, event_name, ordering_key, data, additional,
                bitrix_timestamp, position)
       ORDER BY row.position
       ON CONFLICT (member_id, queue_id) WHERE queue_id IS NOT NULL DO NOTHING
       RETURNING id`,
      [
        memberId,
        processId,
        events.map((event) => event.ID),
        events.map((event) => event.MESSAGE_ID ?? null),
        events.map((event) => event.EVENT_NAME.toUpperCase()),
        events.map((event) => orderingKeyFor(event.EVENT_NAME, event.EVENT_DATA)),
        events.map((event) => JSON.stringify(event.EVENT_DATA ?? null)),
        events.map((event) => JSON.stringify(event.EVENT_ADDITIONAL ?? null)),
        events.map((event) => toTimestamp(event.TIMESTAMP_X)),
        events.map((_, position) => position),
      ],
    );
    return inserted.length;
  }

  /** Events were committed by someone else's transaction: let the worker pick them up now. */
  eventsCommitted(): void {
    this.worker.wake();
  }

  /** Stores one online event (verified by the webhook), once per dedup key. */
  async storeOnlineEvent(input: OnlineEventInput): Promise<{ stored: boolean }> {
    const eventName = input.eventName.toUpperCase();
    const rows: { id: string }[] = await this.dataSource.query(
      `INSERT INTO stored_events
         (member_id, source, dedup_key, event_name, ordering_key, data, bitrix_timestamp)
       VALUES ($1, 'online', $2, $3, $4, $5::jsonb, $6)
       ON CONFLICT (member_id, dedup_key) WHERE dedup_key IS NOT NULL DO NOTHING
       RETURNING id`,
      [
        input.memberId,
        input.dedupKey,
        eventName,
        orderingKeyFor(eventName, input.data),
        JSON.stringify(input.data ?? null),
        input.bitrixTimestamp,
      ],
    );
    if (rows.length > 0) this.worker.wake();
    return { stored: rows.length > 0 };
  }

  /**
   * Runs the event's handlers again, now, whatever its status; recorded as an attempt with
   * trigger 'replay'. A failed replay follows the normal retry policy (dead once out of attempts).
   */
  async replay(eventId: string): Promise<StoredEventEntity> {
    if (!EVENT_ID.test(eventId)) throw new InvalidEventIdError();
    const repository = this.dataSource.getRepository(StoredEventEntity);
    const [claimed]: [{ id: string }[], number] = await this.dataSource.query(
      `UPDATE stored_events
       SET attempts = attempts + 1, claim_expires_at = now() + make_interval(secs => $2)
       WHERE id = $1 AND (claim_expires_at IS NULL OR claim_expires_at <= now())
       RETURNING id`,
      [eventId, CLAIM_SECONDS],
    );
    if (claimed.length === 0) {
      if (await repository.existsBy({ id: eventId })) throw new EventInProgressError(eventId);
      throw new StoredEventNotFoundError(eventId);
    }
    const event = await repository.findOneByOrFail({ id: eventId });
    const outcome = await this.processor.process(event, 'replay');
    this.log.info(
      { memberId: event.memberId, eventId, eventName: event.eventName, outcome },
      'event replayed',
    );
    return repository.findOneByOrFail({ id: eventId });
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
