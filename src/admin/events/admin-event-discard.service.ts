import { Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import { InboxService } from '../../inbox/inbox.service';
import { AppLogger } from '../../logging/app-logger';
import { EventDetailDto } from './admin-event.dto';
import { AdminEventsQueries } from './admin-events.queries';

/**
 * The operator's discard of a dead or unhandled event: the inbox keeps it, marked discarded, and
 * its object's later events go on; the answer is the event with its history.
 */
@Injectable()
export class AdminEventDiscard {
  private readonly log: Logger;

  constructor(
    private readonly inbox: InboxService,
    private readonly queries: AdminEventsQueries,
    appLogger: AppLogger,
  ) {
    this.log = appLogger.child('admin');
  }

  async discard(eventId: string): Promise<EventDetailDto> {
    const event = await this.inbox.discard(eventId);
    this.log.info({ memberId: event.memberId, eventId }, 'operator discarded an event');
    return this.queries.detail(eventId);
  }
}
