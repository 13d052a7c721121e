import { Bitrix24Client } from '../../src/bitrix24/bitrix24.client';
import { DrainService } from '../../src/offline-queue/drain.service';
import { Bitrix24Harness, startBitrix24Harness } from '../bitrix24/bitrix24-harness';
import { eventually } from '../offline-queue/drain-harness';
import { installPortalDirectly } from '../support/portal-fixtures';
import { TEST_ADMIN_TOKEN } from '../support/test-app';

interface CopyRow {
  deal_id: string;
  title: string | null;
  stage_id: string | null;
  deleted: boolean;
  fields: Record<string, unknown>;
}

/** The example handler: event → crm.deal.get → upsert into example_deals → done. */
describe('the example deal-copy handler', () => {
  let h: Bitrix24Harness;

  beforeAll(async () => {
    h = await startBitrix24Harness({ env: { EXAMPLE_HANDLERS: 'true' } });
  });

  afterAll(async () => {
    await h?.close();
  });

  async function copies(memberId: string): Promise<CopyRow[]> {
    const { rows } = await h.sql.query<CopyRow>(
      'SELECT deal_id, title, stage_id, deleted, fields FROM example_deals WHERE member_id = $1 ORDER BY deal_id',
      [memberId],
    );
    return rows;
  }

  async function processedCount(memberId: string): Promise<number> {
    const { rows } = await h.sql.query<{ n: string }>(
      `SELECT count(*) AS n FROM stored_events WHERE member_id = $1 AND status = 'processed'`,
      [memberId],
    );
    return Number(rows[0].n);
  }

  it('keeps the latest copy of each changed deal, marks deleted ones, and stays idempotent', async () => {
    const portal = await installPortalDirectly(h.emulator, h.app);
    const operations = h.app.app.get(Bitrix24Client).operationsFor(portal.memberId);
    for (const event of ['ONCRMDEALUPDATE', 'ONCRMDEALDELETE']) {
      await operations.eventBind({ event, eventType: 'offline' });
    }
    const { ids } = await h.emulator.control.seedDeals(portal.memberId, {
      deals: [
        { TITLE: 'Kept', STAGE_ID: 'NEW' },
        { TITLE: 'Removed', STAGE_ID: 'NEW' },
      ],
    });
    const [kept, removed] = ids;
    // Users change both deals in the portal, then delete the second one.
    await h.emulator.control.userAction(portal.memberId, {
      method: 'crm.deal.update',
      params: { id: kept, fields: { TITLE: 'Kept, renamed', STAGE_ID: 'WON' } },
    });
    await h.emulator.control.userAction(portal.memberId, {
      method: 'crm.deal.update',
      params: { id: removed, fields: { TITLE: 'Removed soon' } },
    });
    await h.emulator.control.userAction(portal.memberId, {
      method: 'crm.deal.delete',
      params: { id: removed },
    });
    // An update event for a deal that no longer exists by the time it is handled.
    await h.emulator.control.enqueueOfflineEvents(portal.memberId, {
      events: [{ event: 'ONCRMDEALUPDATE', data: { FIELDS: { ID: '424242' } } }],
      notify: false,
    });

    await h.app.app.get(DrainService).drainPortal(portal.memberId);
    await eventually(
      () => processedCount(portal.memberId),
      (count) => count === 4,
    );

    const rows = await copies(portal.memberId);
    expect(
      rows.map(({ deal_id, title, stage_id, deleted }) => ({ deal_id, title, stage_id, deleted })),
    ).toEqual([
      { deal_id: String(kept), title: 'Kept, renamed', stage_id: 'WON', deleted: false },
      { deal_id: String(removed), title: null, stage_id: null, deleted: true },
      { deal_id: '424242', title: null, stage_id: null, deleted: true },
    ]);
    expect(rows[0].fields).toMatchObject({
      ID: String(kept),
      CURRENCY_ID: 'USD',
      CATEGORY_ID: '0',
    });

    // The handler fetched with crm.deal.get, once per update event; a delete needs no fetch.
    const requests = await h.emulator.control.requests(portal.memberId);
    expect(requests.filter((request) => request.method === 'crm.deal.get')).toHaveLength(3);

    // A replay fetches the deal again and writes the same row: nothing duplicated.
    await h.emulator.control.userAction(portal.memberId, {
      method: 'crm.deal.update',
      params: { id: kept, fields: { TITLE: 'Kept, renamed again' } },
    });
    const { rows: events } = await h.sql.query<{ id: string }>(
      `SELECT id FROM stored_events
        WHERE member_id = $1 AND event_name = 'ONCRMDEALUPDATE' AND data->'FIELDS'->>'ID' = $2`,
      [portal.memberId, String(kept)],
    );
    const response = await fetch(`${h.app.url}/admin/events/${events[0].id}/replay`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` },
    });
    expect(response.status).toBe(200);
    const after = await copies(portal.memberId);
    expect(after).toHaveLength(3);
    expect(after[0]).toMatchObject({ title: 'Kept, renamed again', deleted: false });
  });
});
