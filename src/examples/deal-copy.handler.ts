import { Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import { DataSource } from 'typeorm';
import { Bitrix24ApiError, PortalNotActiveError } from '../bitrix24/bitrix24-api.error';
import type { InboxEvent } from '../inbox/inbox-event';
import { OnBitrix24Event } from '../inbox/on-bitrix24-event.decorator';
import { AppLogger } from '../logging/app-logger';

/** An event carries only the deal's ID; anything else is not a deal event we can act on. */
function dealIdOf(event: InboxEvent): string | null {
  const id = (event.data as { FIELDS?: { ID?: unknown } } | null)?.FIELDS?.ID;
  const text = typeof id === 'number' ? String(id) : id;
  return typeof text === 'string' && /^[1-9][0-9]{0,17}$/.test(text) ? text : null;
}

/** CRM methods answer a missing object with an empty code and "Not found" (crm-deal-get.md). */
function isNotFound(error: unknown): boolean {
  return (
    error instanceof Bitrix24ApiError &&
    (error.bitrixCode === '' || error.bitrixCode === 'NOT_FOUND') &&
    /not found/i.test(error.description)
  );
}

/**
 * Example of the whole pattern: event → fetch → upsert → done. Bitrix24 sends only the changed
 * deal's ID, so the handler fetches the deal with the portal client and keeps the latest copy in
 * its own table (`example_deals`). It is idempotent: a retry or replay fetches the deal as it is
 * now and writes the same row again. A thrown error (Bitrix24 unreachable after the client's own
 * retries) fails the run and the inbox retries it later.
 */
@Injectable()
export class DealCopyHandler {
  private readonly log: Logger;

  constructor(
    private readonly dataSource: DataSource,
    appLogger: AppLogger,
  ) {
    this.log = appLogger.child('example-handlers');
  }

  @OnBitrix24Event('ONCRMDEALADD', 'ONCRMDEALUPDATE', 'ONCRMDEALDELETE')
  async copyDeal(event: InboxEvent): Promise<void> {
    const dealId = dealIdOf(event);
    if (dealId === null) {
      this.log.warn({ memberId: event.memberId, eventId: event.id }, 'deal event without an ID');
      return;
    }
    let fields: Record<string, unknown> | null = null;
    if (event.eventName !== 'ONCRMDEALDELETE') {
      try {
        const answer = await event.portal.call<Record<string, unknown>>('crm.deal.get', {
          id: dealId,
        });
        fields = answer.result;
      } catch (error) {
        // Uninstalled (or never installed) since the event was stored: nothing to fetch, ever.
        if (error instanceof PortalNotActiveError) {
          this.log.info(
            { memberId: event.memberId, eventId: event.id, status: error.status },
            'portal not callable: deal not copied',
          );
          return;
        }
        // Deleted since the event was raised: the copy says so.
        if (!isNotFound(error)) throw error;
      }
    }
    await this.dataSource.query(
      `INSERT INTO example_deals AS d
         (member_id, deal_id, title, stage_id, fields, deleted, event_id, copied_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, now())
       ON CONFLICT (member_id, deal_id) DO UPDATE
         SET title = EXCLUDED.title, stage_id = EXCLUDED.stage_id, fields = EXCLUDED.fields,
             deleted = EXCLUDED.deleted, event_id = EXCLUDED.event_id, copied_at = now()`,
      [
        event.memberId,
        dealId,
        typeof fields?.TITLE === 'string' ? fields.TITLE.slice(0, 255) : null,
        typeof fields?.STAGE_ID === 'string' ? fields.STAGE_ID.slice(0, 64) : null,
        JSON.stringify(fields ?? {}),
        fields === null,
        event.id,
      ],
    );
    this.log.info(
      { memberId: event.memberId, eventId: event.id, dealId, deleted: fields === null },
      'deal copied',
    );
  }
}
