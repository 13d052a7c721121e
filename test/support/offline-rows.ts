import type { OfflineEvent } from '../../src/bitrix24/bitrix24.types';

/**
 * `ONCRMDEALUPDATE` rows as event.offline.get returns them, one per deal named, with IDs counted
 * from `firstId` (and MESSAGE_IDs `<prefix>-<ID>`).
 */
export function dealUpdateRows(
  firstId: number,
  deals: readonly string[],
  messagePrefix = 'm',
): OfflineEvent[] {
  return deals.map((deal, index) => ({
    ID: String(firstId + index),
    TIMESTAMP_X: new Date().toISOString(),
    EVENT_NAME: 'ONCRMDEALUPDATE',
    EVENT_DATA: { FIELDS: { ID: deal } },
    EVENT_ADDITIONAL: {},
    MESSAGE_ID: `${messagePrefix}-${firstId + index}`,
  }));
}
