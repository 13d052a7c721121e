import type { TestApp } from '../support/test-app';
import { DrainHarness, eventually, installBoundPortal, startDrainHarness } from './drain-harness';

/**
 * Bitrix24 orders offline rows by TIMESTAMP_X, which has one-second precision, and leaves ties in
 * any order. The emulator's `unstableTies` returns them newest first; the drain must still store an
 * object's events in the order they were raised.
 */
describe('offline page order', () => {
  let h: DrainHarness;
  let app: TestApp;

  beforeAll(async () => {
    h = await startDrainHarness();
    app = await h.startApp({ DRAIN_PAGE_SIZE: '3' });
  });

  afterAll(async () => {
    await h?.close();
  });

  it('stores the events of one second in the order they were raised, across pages', async () => {
    const portal = await installBoundPortal(h, app);
    await h.emulator.control.setFaults(portal.memberId, { unstableTies: true });
    const raised = [
      { event: 'ONCRMDEALADD', data: { FIELDS: { ID: '5' } } },
      { event: 'ONCRMDEALUPDATE', data: { FIELDS: { ID: '5' } } },
      { event: 'ONCRMCONTACTADD', data: { FIELDS: { ID: '9' } } },
      { event: 'ONCRMCONTACTUPDATE', data: { FIELDS: { ID: '9' } } },
      { event: 'ONCRMDEALDELETE', data: { FIELDS: { ID: '5' } } },
    ];

    await h.emulator.control.enqueueOfflineEvents(portal.memberId, { events: raised });

    const stored = await eventually(
      async () => {
        const { rows } = await h.sql.query<{ event_name: string }>(
          `SELECT event_name FROM stored_events WHERE member_id = $1 AND source = 'offline'
           ORDER BY id`,
          [portal.memberId],
        );
        return rows.map((row) => row.event_name);
      },
      (names) => names.length === raised.length,
      20_000,
    );
    expect(stored).toEqual(raised.map(({ event }) => event));
  });
});
