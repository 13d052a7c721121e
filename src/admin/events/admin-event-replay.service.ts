import { Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import { InboxService } from '../../inbox/inbox.service';
import { AppLogger } from '../../logging/app-logger';
import { EventDetailDto } from './admin-event.dto';
import { AdminEventsQueries } from './admin-events.queries';

/** The operator's replay: the inbox runs the handlers; the answer is the event with its history. */
@Injectable()
export class AdminEventReplay {
  private readonly log: Logger;

  constructor(
    private readonly inbox: InboxService,
    private readonly queries: AdminEventsQueries,
    appLogger: AppLogger,
  ) {
    this.log = appLogger.child('admin');
  }

  async replay(eventId: string): Promise<EventDetailDto> {
    const event = await this.inbox.replay(eventId);
    this.log.info(
      { memberId: event.memberId, eventId, status: event.status },
      'operator replayed an event',
    );
    return this.queries.detail(eventId);
  }
}
