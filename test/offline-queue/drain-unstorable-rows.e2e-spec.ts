import { DrainService } from '../../src/offline-queue/drain.service';
import type { TestApp } from '../support/test-app';
import {
  DrainHarness,
  installBoundPortal,
  logLines,
  startDrainHarness,
  storedCounts,
  withInsertTrigger,
} from './drain-harness';

interface StoredRow {
  queue_id: string;
  message_id: string | null;
  event_name: string;
  data: unknown;
  status: string;
  last_error: string | null;
  ordering_key: string | null;
}

/**
 * Rows Postgres would refuse as Bitrix24 sends them (a NUL or a lone surrogate in EVENT_DATA, an
 * over-long MESSAGE_ID) must not block a portal's drain: they are stored cleaned, or dead with the
 * reason, in the same transaction as the rest of their page, and the page is cleared.
 */
describe('drains of rows the database cannot store as sent', () => {
  let h: DrainHarness;
  let app: TestApp;
  let drains: DrainService;

  beforeAll(async () => {
    h = await startDrainHarness();
    app = await h.startApp({ DRAIN_PAGE_SIZE: '50' });
    drains = app.app.get(DrainService);
  });

  afterAll(async () => {
    await h?.close();
  });

  async function storedRows(memberId: string): Promise<StoredRow[]> {
    const { rows } = await h.sql.query<StoredRow>(
      `SELECT queue_id::text AS queue_id, message_id, event_name, data, status, last_error,
              ordering_key
       FROM stored_events WHERE member_id = $1 ORDER BY queue_id`,
      [memberId],
    );
    return rows;
  }

  async function queueOf(memberId: string) {
    const stats = await h.emulator.control.stats(memberId);
    return { ...stats.queue, reservedProcessIds: stats.reservedProcessIds };
  }

  it('stores NUL and lone surrogates replaced, an over-long MESSAGE_ID dead, and clears every page', async () => {
    const portal = await installBoundPortal(h, app);
    await h.emulator.control.enqueueOfflineEvents(portal.memberId, { count: 40, notify: false });
    const longMessageId = 'f'.repeat(100);
    await h.emulator.control.enqueueOfflineEvents(portal.memberId, {
      events: [
        {
          event: 'ONCRMDEALUPDATE',
          data: { FIELDS: { ID: '9001', TITLE: 'before\u0000after', 'KEY\u0000': 'value' } },
        },
        { event: 'ONCRMDEALUPDATE', data: { FIELDS: { ID: '9002', TITLE: 'half \uD800 pair' } } },
        {
          event: 'ONCRMDEALUPDATE',
          data: { FIELDS: { ID: '9003' } },
          messageId: longMessageId,
        },
        { event: 'ONCRMDEALUPDATE', data: { FIELDS: { ID: '9004', TITLE: 'ordinary' } } },
      ],
      notify: false,
    });
    await h.emulator.control.enqueueOfflineEvents(portal.memberId, { count: 30, notify: false });

    const report = await drains.drainPortal(portal.memberId);
    expect(report).toMatchObject({ outcome: 'drained', events: 74, pages: 2 });
    expect(await storedCounts(h.sql, portal.memberId)).toEqual({ rows: 74, distinctQueueIds: 74 });
    expect(await queueOf(portal.memberId)).toMatchObject({
      total: 0,
      reserved: 0,
      reservedProcessIds: [],
    });

    const rows = await storedRows(portal.memberId);
    const byDeal = new Map(
      rows.map((row) => [String((row.data as { FIELDS?: { ID?: unknown } }).FIELDS?.ID), row]),
    );
    const withNul = byDeal.get('9001')!;
    expect(withNul.data).toEqual({
      FIELDS: { ID: '9001', TITLE: 'before\uFFFDafter', 'KEY\uFFFD': 'value' },
    });
    expect(['pending', 'unhandled']).toContain(withNul.status);
    expect(withNul.ordering_key).toBe('CRMDEAL:9001');
    const withSurrogate = byDeal.get('9002')!;
    expect(withSurrogate.data).toEqual({ FIELDS: { ID: '9002', TITLE: 'half \uFFFD pair' } });
    expect(['pending', 'unhandled']).toContain(withSurrogate.status);

    const longId = byDeal.get('9003')!;
    expect(longId.status).toBe('dead');
    expect(longId.message_id).toBe('f'.repeat(64));
    expect(longId.last_error).toContain(longMessageId);
    expect(longId.data).toEqual({ FIELDS: { ID: '9003' } });
    expect(['pending', 'unhandled']).toContain(byDeal.get('9004')!.status);

    expect(
      logLines(app.logs, portal.memberId, 'offline rows held characters Postgres cannot store'),
    ).toHaveLength(1);
    expect(
      logLines(app.logs, portal.memberId, 'offline row cannot go to its handlers'),
    ).toHaveLength(1);
    const { rows: batches } = await h.sql.query(
      `SELECT state, count(*)::int AS count, sum(event_count)::int AS events FROM drain_batches
       WHERE member_id = $1 GROUP BY state`,
      [portal.memberId],
    );
    expect(batches).toEqual([{ state: 'cleared', count: 2, events: 74 }]);
  });

  it('stores the same rows on a portal drained with clear=1 (at-most-once) without losing the page', async () => {
    const portal = await installBoundPortal(h, app, {
      portal: { features: { rest_offline_extended: false } },
    });
    await h.emulator.control.enqueueOfflineEvents(portal.memberId, {
      events: [
        { event: 'ONCRMLEADADD', data: { FIELDS: { ID: '1', NAME: '\u0000' } } },
        { event: 'ONCRMLEADADD', data: { FIELDS: { ID: '2' } }, messageId: 'x'.repeat(65) },
      ],
      notify: false,
    });
    expect(await drains.drainPortal(portal.memberId)).toMatchObject({
      outcome: 'drained',
      events: 2,
      deliveryMode: 'at-most-once',
    });
    const rows = await storedRows(portal.memberId);
    expect(rows.map((row) => row.status === 'dead')).toEqual([false, true]);
    expect(rows[0].data).toEqual({ FIELDS: { ID: '1', NAME: '\uFFFD' } });
  });

  it('stores a row the database still refuses as dead, with the reason, and the rest of its page as usual', async () => {
    const portal = await installBoundPortal(h, app);
    await h.emulator.control.enqueueOfflineEvents(portal.memberId, { count: 20, notify: false });
    await h.emulator.control.enqueueOfflineEvents(portal.memberId, {
      events: [{ event: 'ONCRMDEALADD', data: { FIELDS: { ID: '777' }, REFUSE_ME: true } }],
      notify: false,
    });
    await h.emulator.control.enqueueOfflineEvents(portal.memberId, { count: 20, notify: false });
    // A value Postgres will not take, after all the cleaning, stands in for whatever a future
    // Bitrix24 row might hold: the trigger raises a data exception (SQLSTATE class 22) for it.
    const report = await withInsertTrigger(
      h.sql,
      {
        name: 'refuse_marked_row',
        table: 'stored_events',
        body: `
        IF NEW.status <> 'dead' AND jsonb_typeof(NEW.data) = 'object' AND NEW.data ? 'REFUSE_ME' THEN
          RAISE EXCEPTION 'value the database cannot store' USING ERRCODE = 'data_exception';
        END IF;
        RETURN NEW;`,
      },
      () => drains.drainPortal(portal.memberId),
    );
    expect(report).toMatchObject({ outcome: 'drained', events: 41, pages: 1 });
    expect(await storedCounts(h.sql, portal.memberId)).toEqual({ rows: 41, distinctQueueIds: 41 });
    expect(await queueOf(portal.memberId)).toMatchObject({ total: 0, reserved: 0 });

    const rows = await storedRows(portal.memberId);
    const dead = rows.filter((row) => row.status === 'dead');
    expect(dead).toHaveLength(1);
    expect(dead[0].last_error).toContain('value the database cannot store');
    expect(dead[0].ordering_key).toBeNull();
    // The payload is kept, as JSON text, for the operator.
    expect(JSON.parse(dead[0].data as string)).toEqual({
      FIELDS: { ID: '777' },
      REFUSE_ME: true,
    });
    expect(rows.filter((row) => row.status !== 'dead')).toHaveLength(40);
  });

  it('fails the whole page, clearing nothing, when even the dead row cannot be stored; the next pass stores it', async () => {
    const portal = await installBoundPortal(h, app);
    await h.emulator.control.enqueueOfflineEvents(portal.memberId, { count: 60, notify: false });
    await h.emulator.control.enqueueOfflineEvents(portal.memberId, {
      events: [{ event: 'ONCRMDEALADD', data: { FIELDS: { ID: '888' } } }],
      notify: false,
    });
    const failed = await withInsertTrigger(
      h.sql,
      {
        name: 'refuse_every_deal_888',
        table: 'stored_events',
        body: `
        IF NEW.ordering_key = 'CRMDEAL:888' OR NEW.status = 'dead' THEN
          RAISE EXCEPTION 'value the database cannot store' USING ERRCODE = 'data_exception';
        END IF;
        RETURN NEW;`,
      },
      () => drains.drainPortal(portal.memberId),
    );
    // Page 1 (50 rows) went in; page 2 (10 rows and deal 888) was not committed at all.
    expect(failed).toMatchObject({ outcome: 'failed', events: 50, pages: 1 });
    expect(await storedCounts(h.sql, portal.memberId)).toEqual({ rows: 50, distinctQueueIds: 50 });
    expect(await queueOf(portal.memberId)).toMatchObject({ total: 11, reserved: 11 });

    expect(await drains.drainPortal(portal.memberId)).toMatchObject({
      outcome: 'drained',
      recoveredBatches: 1,
      events: 11,
    });
    expect(await storedCounts(h.sql, portal.memberId)).toEqual({ rows: 61, distinctQueueIds: 61 });
    expect(await queueOf(portal.memberId)).toMatchObject({
      total: 0,
      reserved: 0,
      reservedProcessIds: [],
    });
    const rows = await storedRows(portal.memberId);
    expect(rows.filter((row) => row.status === 'dead')).toEqual([]);
  });
});
