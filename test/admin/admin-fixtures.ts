import { randomBytes } from 'node:crypto';
import { DataSource, DeepPartial } from 'typeorm';
import { EventAttemptEntity } from '../../src/inbox/event-attempt.entity';
import { StoredEventEntity } from '../../src/inbox/stored-event.entity';
import { PortalEntity } from '../../src/portals/portal.entity';

/** Far enough ahead that an inbox worker running in the test app leaves arranged events alone. */
export const NOT_DUE = new Date(Date.now() + 7 * 24 * 3600 * 1000);

export function newMemberId(): string {
  return randomBytes(16).toString('hex');
}

export async function arrangePortal(
  dataSource: DataSource,
  overrides: DeepPartial<PortalEntity> = {},
): Promise<PortalEntity> {
  const memberId = overrides.memberId ?? newMemberId();
  const domain = `p${memberId.slice(0, 8)}.bitrix24.com`;
  return dataSource.getRepository(PortalEntity).save({
    memberId,
    domain,
    clientEndpoint: `https://${domain}/rest/`,
    status: 'active',
    planStatus: 'P',
    ...overrides,
  });
}

let queueId = 1000;

/** Stored offline events for a portal, pending and not due, unless overridden. */
export async function arrangeEvents(
  dataSource: DataSource,
  memberId: string,
  count: number,
  overrides: DeepPartial<StoredEventEntity> = {},
): Promise<StoredEventEntity[]> {
  const rows = Array.from({ length: count }, () => {
    queueId += 1;
    return {
      memberId,
      source: 'offline' as const,
      queueId: String(queueId),
      messageId: randomBytes(16).toString('hex'),
      eventName: 'ONCRMDEALUPDATE',
      data: { FIELDS: { ID: String(queueId) } },
      bitrixTimestamp: new Date(),
      status: 'pending' as const,
      nextAttemptAt: NOT_DUE,
      ...overrides,
    };
  });
  return dataSource.getRepository(StoredEventEntity).save(rows);
}

export async function arrangeAttempt(
  dataSource: DataSource,
  event: StoredEventEntity,
  overrides: DeepPartial<EventAttemptEntity> = {},
): Promise<EventAttemptEntity> {
  return dataSource.getRepository(EventAttemptEntity).save({
    eventId: event.id,
    attempt: 1,
    trigger: 'automatic',
    outcome: 'failed',
    handlers: ['DealHandler.onUpdate'],
    error: 'handler threw: boom',
    startedAt: new Date(Date.now() - 2000),
    finishedAt: new Date(Date.now() - 1000),
    ...overrides,
  });
}
