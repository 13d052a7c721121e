import { Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import { AppLogger } from '../../logging/app-logger';
import type { InboxEvent } from '../inbox-event';
import { OnBitrix24Event } from '../on-bitrix24-event.decorator';

/**
 * Example: logs every deal change. Real handlers do their work here (call the vendor's systems,
 * write their own tables) and must be idempotent: a retry or a replay delivers the same event
 * (same `event.id`) again. Throwing fails the run; the inbox retries with backoff, then gives up
 * (`dead`) after INBOX_MAX_ATTEMPTS.
 */
@Injectable()
export class DealChangeLogHandler {
  private readonly log: Logger;

  constructor(appLogger: AppLogger) {
    this.log = appLogger.child('example-handlers');
  }

  @OnBitrix24Event('ONCRMDEALADD', 'ONCRMDEALUPDATE', 'ONCRMDEALDELETE')
  onDealChange(event: InboxEvent): void {
    const dealId = (event.data as { FIELDS?: { ID?: unknown } } | null)?.FIELDS?.ID;
    this.log.info(
      {
        memberId: event.memberId,
        eventId: event.id,
        eventName: event.eventName,
        dealId,
        attempt: event.attempt,
        trigger: event.trigger,
      },
      'deal changed',
    );
  }
}
