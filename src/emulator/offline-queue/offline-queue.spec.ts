import { ManualClock } from '../clock';
import { defaultMessageId } from './message-id';
import {
  LOWEST_ID_FIRST,
  OLDEST_FIRST,
  parseFilter,
  parseOrder,
  LIST_FIELDS,
} from './offline-query';
import { OfflineQueue, type OfflineSelection } from './offline-queue';

const oldestFifty: OfflineSelection = { conditions: [], order: OLDEST_FIRST, limit: 50 };
const page = (limit: number): OfflineSelection => ({ conditions: [], order: OLDEST_FIRST, limit });

function dealUpdate(id: number, connectorId = '') {
  return {
    eventName: 'ONCRMDEALUPDATE',
    eventData: { FIELDS: { ID: String(id) } },
    userId: 1,
    connectorId,
  };
}

describe('OfflineQueue', () => {
  let clock: ManualClock;
  let queue: OfflineQueue;

  beforeEach(() => {
    clock = new ManualClock();
    queue = new OfflineQueue(clock);
  });

  it('merges a repeated event into the waiting row, keeping its ID and moving it to the tail', () => {
    queue.write(dealUpdate(1));
    queue.write(dealUpdate(2));
    clock.advance(5000);
    expect(queue.write(dealUpdate(1))).toBe('merged');

    const processId = queue.reserve('', false, oldestFifty);
    const rows = queue.readBatch(processId, '', false, oldestFifty);
    expect(rows.map((row) => row.id)).toEqual([2, 1]);
    expect(rows[1].timestampMs).toBe(clock.now());
  });

  it('writes a new row when the same message is already reserved', () => {
    queue.write(dealUpdate(1));
    const processId = queue.reserve('', false, oldestFifty);
    expect(queue.write(dealUpdate(1))).toBe('inserted');

    expect(queue.counts()).toEqual({ unreserved: 1, reserved: 1, error: 0, total: 2 });
    expect(queue.readBatch(processId, '', false, oldestFifty)).toHaveLength(1);
  });

  it('keeps queues of different connectors apart', () => {
    queue.write(dealUpdate(1, ''));
    queue.write(dealUpdate(1, 'crm-sync'));

    const processId = queue.reserve('crm-sync', false, oldestFifty);
    expect(queue.readBatch(processId, 'crm-sync', false, oldestFifty)).toHaveLength(1);
    expect(queue.readBatch(processId, '', false, oldestFifty)).toHaveLength(0);
    expect(queue.counts().unreserved).toBe(1);
  });

  it('reserves disjoint batches oldest first', () => {
    for (let id = 1; id <= 5; id++) queue.write(dealUpdate(id));
    const first = queue.reserve('', false, page(3));
    const second = queue.reserve('', false, page(3));

    expect(queue.readBatch(first, '', false, oldestFifty).map((row) => row.id)).toEqual([1, 2, 3]);
    expect(queue.readBatch(second, '', false, oldestFifty).map((row) => row.id)).toEqual([4, 5]);
  });

  it('honours a filter when reserving', () => {
    queue.write(dealUpdate(1));
    queue.write({ ...dealUpdate(2), eventName: 'ONCRMCONTACTADD' });
    const selection = {
      ...oldestFifty,
      conditions: parseFilter({ EVENT_NAME: 'oncrmcontactadd' }, LIST_FIELDS, {
        arraysAllowed: false,
      }),
    };
    const processId = queue.reserve('', false, selection);

    expect(queue.readBatch(processId, '', false, oldestFifty).map((row) => row.eventName)).toEqual([
      'ONCRMCONTACTADD',
    ]);
  });

  it('clears only the batch rows named by message id', () => {
    queue.write(dealUpdate(1));
    queue.write(dealUpdate(2));
    const processId = queue.reserve('', false, oldestFifty);
    queue.clear(processId, '', {
      messageIds: [defaultMessageId('ONCRMDEALUPDATE', { FIELDS: { ID: '1' } })],
    });

    expect(queue.readBatch(processId, '', false, oldestFifty).map((row) => row.id)).toEqual([2]);
  });

  it('turns batch rows into waiting error rows and deletes their duplicates elsewhere', () => {
    queue.write(dealUpdate(1));
    const processId = queue.reserve('', false, oldestFifty);
    queue.write(dealUpdate(1)); // the same message again, now waiting outside the batch
    const messageId = defaultMessageId('ONCRMDEALUPDATE', { FIELDS: { ID: '1' } });

    queue.markError(processId, '', [messageId]);

    expect(queue.counts()).toEqual({ unreserved: 0, reserved: 0, error: 1, total: 1 });
    const errorBatch = queue.reserve('', true, oldestFifty);
    expect(queue.readBatch(errorBatch, '', true, oldestFifty).map((row) => row.id)).toEqual([1]);
  });

  it('slots a released error row back by its old timestamp', () => {
    const messageOf = (id: number) =>
      defaultMessageId('ONCRMDEALUPDATE', { FIELDS: { ID: String(id) } });
    queue.write(dealUpdate(1));
    const older = queue.reserve('', false, oldestFifty);
    clock.advance(10_000);
    queue.write(dealUpdate(2));
    const newer = queue.reserve('', false, oldestFifty);
    queue.markError(newer, '', [messageOf(2)]);
    queue.markError(older, '', [messageOf(1)]);

    const errors = queue.reserve('', true, page(1));
    expect(queue.readBatch(errors, '', true, oldestFifty).map((row) => row.id)).toEqual([1]);
  });

  it('pages the list by ID with a total', () => {
    for (let id = 1; id <= 120; id++) queue.write(dealUpdate(id));
    const second = queue.list('', [], LOWEST_ID_FIRST, 50, 50);
    const last = queue.list('', [], LOWEST_ID_FIRST, 100, 50);

    expect(second.total).toBe(120);
    expect(second.rows[0].id).toBe(51);
    expect(last.rows.map((row) => row.id)).toEqual(
      Array.from({ length: 20 }, (_, index) => 101 + index),
    );
  });

  it('lists reserved rows only for a ">PROCESS_ID" filter, in any requested order', () => {
    for (let id = 1; id <= 4; id++) queue.write(dealUpdate(id));
    queue.reserve('', false, page(2));
    const conditions = parseFilter({ '>PROCESS_ID': '' }, LIST_FIELDS, { arraysAllowed: true });
    const listed = queue.list(
      '',
      conditions,
      parseOrder({ ID: 'DESC' }, LIST_FIELDS, LOWEST_ID_FIRST),
      0,
      50,
    );

    expect(listed.rows.map((row) => row.id)).toEqual([2, 1]);
    expect(listed.total).toBe(2);
  });

  it('purges reserved rows by the age of their last write, not of the reservation', () => {
    queue.write(dealUpdate(1));
    clock.advance(40 * 86_400_000);
    queue.write(dealUpdate(2));
    queue.reserve('', false, oldestFifty);

    expect(queue.purgeReserved(2_952_000 * 1000)).toBe(1);
    expect(queue.counts()).toEqual({ unreserved: 0, reserved: 1, error: 0, total: 1 });
  });

  it('drains a large queue page by page without losing or repeating a row', () => {
    for (let id = 1; id <= 20_000; id++) queue.write(dealUpdate(id));
    const seen = new Set<number>();
    for (;;) {
      const processId = queue.reserve('', false, oldestFifty);
      const rows = queue.readBatch(processId, '', false, oldestFifty);
      if (rows.length === 0) break;
      for (const row of rows) seen.add(row.id);
      queue.deleteBatch(processId, '');
    }
    expect(seen.size).toBe(20_000);
    expect(queue.counts().total).toBe(0);
  });
});
